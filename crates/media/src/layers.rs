//! Simulcast: which layer a viewer gets, and how fast each layer flows.

/// The rids the studio page sends, lowest first: quarter, half and full resolution.
pub const RIDS: [&str; 3] = ["q", "h", "f"];

/// Bytes per second of one incoming stream, over the last [`RateMeter::WINDOW_MS`].
///
/// Two half-window buckets: cheap to update per packet, and the rate never drops to zero
/// between two packets of a slow stream.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    bucket_start_ms: u64,
    current: u64,
    previous: u64,
}

impl RateMeter {
    pub const WINDOW_MS: u64 = 1000;
    const BUCKET_MS: u64 = Self::WINDOW_MS / 2;

    pub fn add(&mut self, now_ms: u64, bytes: usize) {
        self.roll(now_ms);
        self.current += bytes as u64;
    }

    /// Bits per second: the previous whole bucket plus the current part-filled one.
    pub fn bps(&mut self, now_ms: u64) -> u64 {
        self.roll(now_ms);
        let span_ms = Self::BUCKET_MS + now_ms.saturating_sub(self.bucket_start_ms);
        (self.current + self.previous) * 8 * 1000 / span_ms
    }

    fn roll(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.bucket_start_ms);
        if elapsed >= 2 * Self::BUCKET_MS {
            self.previous = 0;
            self.current = 0;
            self.bucket_start_ms = now_ms;
        } else if elapsed >= Self::BUCKET_MS {
            self.previous = self.current;
            self.current = 0;
            self.bucket_start_ms += Self::BUCKET_MS;
        }
    }
}

/// Picks the layer (index into the offered layers, lowest first) for one video source.
///
/// `layers` holds each layer's current bitrate (0 = not flowing, e.g. the encoder dropped it).
/// A manual choice wins if that layer flows; otherwise the highest flowing layer that fits
/// `budget_bps`, and the lowest flowing one if none fits, so a viewer on a poor line keeps a
/// picture. `None` when nothing flows.
pub fn choose_layer(layers: &[u64], budget_bps: u64, manual: Option<usize>) -> Option<usize> {
    if let Some(m) = manual
        && layers.get(m).is_some_and(|&bps| bps > 0)
    {
        return Some(m);
    }
    let flowing = || layers.iter().enumerate().filter(|(_, bps)| **bps > 0);
    flowing()
        .filter(|(_, bps)| **bps <= budget_bps)
        .map(|(i, _)| i)
        .next_back()
        .or_else(|| flowing().map(|(i, _)| i).next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_picks_the_highest_layer_that_fits() {
        let layers = [150_000, 500_000, 1_800_000];
        assert_eq!(choose_layer(&layers, 3_000_000, None), Some(2));
        assert_eq!(choose_layer(&layers, 1_000_000, None), Some(1));
        assert_eq!(choose_layer(&layers, 200_000, None), Some(0));
        // A poor line still gets the lowest layer.
        assert_eq!(choose_layer(&layers, 10_000, None), Some(0));
    }

    #[test]
    fn layers_that_do_not_flow_are_skipped() {
        assert_eq!(choose_layer(&[150_000, 0, 0], 3_000_000, None), Some(0));
        assert_eq!(choose_layer(&[0, 500_000, 0], 10_000, None), Some(1));
        assert_eq!(choose_layer(&[0, 0, 0], 3_000_000, None), None);
        assert_eq!(choose_layer(&[], 3_000_000, None), None);
    }

    #[test]
    fn a_manual_choice_wins_while_its_layer_flows() {
        let layers = [150_000, 500_000, 1_800_000];
        assert_eq!(choose_layer(&layers, 100, Some(2)), Some(2));
        assert_eq!(choose_layer(&layers, 10_000_000, Some(0)), Some(0));
        assert_eq!(choose_layer(&[150_000, 500_000, 0], 100, Some(2)), Some(0));
    }

    #[test]
    fn rate_meter_measures_and_forgets() {
        let mut m = RateMeter::default();
        for i in 0..100 {
            m.add(i * 10, 1250); // 1250 B every 10 ms = 1 Mbit/s
        }
        let bps = m.bps(1000);
        assert!((800_000..=1_200_000).contains(&bps), "{bps}");
        assert_eq!(m.bps(5000), 0);
    }
}
