//! The municipality's identity on every page: its name, its logo and its accent colour, from the
//! `[brand]` section of the config. The accent colour is checked against WCAG 2.1 AA (4.5:1 for
//! text) on every surface the pages put it on or under, and darkened until it passes: a
//! municipality's exact green may become a shade darker, but no citizen gets an unreadable
//! button.
//!
//! Pure except [`Brand::load`], which reads the logo file once at start.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// `[brand]` in the config file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrandConfig {
    /// Shown in every page's header and title, e.g. "Hørsholm Kommune" [default: townhall].
    pub name: Option<String>,
    /// An SVG, PNG, JPEG or WebP file shown before the name (at most 512 KiB).
    pub logo: Option<PathBuf>,
    /// Accent colour of buttons, links and highlights, `#rrggbb` [default: #0b4f8a].
    pub accent: Option<String>,
}

pub const DEFAULT_NAME: &str = "townhall";
pub const DEFAULT_ACCENT: Rgb = Rgb(0x0b, 0x4f, 0x8a);
/// WCAG 2.1 AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;
const MAX_NAME_CHARS: usize = 80;
const MAX_LOGO_BYTES: u64 = 512 * 1024;

/// The page background and the lightest card colour the accent sits on (app.css `--bg`,
/// `--surface`); the accent's own tint is checked too (see [`Palette`]).
const SURFACES: [Rgb; 2] = [Rgb(0xf3, 0xf5, 0xf7), Rgb(0xff, 0xff, 0xff)];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb` or `#rgb`.
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.trim().strip_prefix('#')?;
        let digit = |c: char| c.to_digit(16).map(|d| d as u8);
        let digits: Option<Vec<u8>> = hex.chars().map(digit).collect();
        match digits?.as_slice() {
            [r, g, b] => Some(Rgb(r * 17, g * 17, b * 17)),
            [r1, r2, g1, g2, b1, b2] => Some(Rgb(r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2)),
            _ => None,
        }
    }

    /// Relative luminance (WCAG 2.1).
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// `self` mixed with `other`, `t` of the way (0.0 = self, 1.0 = other).
    pub fn mix(self, other: Rgb, t: f64) -> Rgb {
        let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

const WHITE: Rgb = Rgb(255, 255, 255);
const BLACK: Rgb = Rgb(0, 0, 0);

/// WCAG contrast ratio of two colours (1.0 to 21.0).
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// The colours the pages derive from the accent (app.css `--primary`, `--primary-dark`,
/// `--primary-soft`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Palette {
    pub accent: Rgb,
    pub dark: Rgb,
    pub soft: Rgb,
}

impl Palette {
    pub fn of(accent: Rgb) -> Palette {
        Palette {
            accent,
            dark: accent.mix(BLACK, 0.28),
            soft: accent.mix(WHITE, 0.9),
        }
    }

    /// The lowest contrast of the accent against what it meets: white text on it, and it as
    /// text (links, outlines, the dark shade on the soft tint) on the page, cards and its tint.
    pub fn worst_contrast(&self) -> f64 {
        let mut worst = contrast(self.accent, self.soft).min(contrast(self.dark, self.soft));
        for s in SURFACES {
            worst = worst.min(contrast(self.accent, s));
        }
        worst
    }
}

/// The palette for a wanted accent: as given when it passes AA everywhere, else darkened in small
/// steps until it does. Returns the palette and whether the colour had to change.
pub fn fit_accent(wanted: Rgb) -> (Palette, bool) {
    let mut t = 0.0;
    loop {
        let p = Palette::of(wanted.mix(BLACK, t));
        // Black passes against white by far, so this ends before t reaches 1.
        if p.worst_contrast() >= MIN_CONTRAST || t >= 1.0 {
            return (p, t > 0.0);
        }
        t = (t + 0.02).min(1.0);
    }
}

/// A logo ready to serve.
#[derive(Clone, Debug)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
}

/// The brand as the pages use it.
#[derive(Clone, Debug)]
pub struct Brand {
    pub name: String,
    pub palette: Palette,
    pub logo: Option<Logo>,
    /// The `--primary…` custom properties, served as /brand.css after app.css.
    pub css: String,
}

impl Default for Brand {
    fn default() -> Self {
        Brand::new(DEFAULT_NAME.into(), Palette::of(DEFAULT_ACCENT), None)
    }
}

/// Checks `[brand]` without touching the disk (config validation).
pub fn validate(c: &BrandConfig) -> Result<(), String> {
    if let Some(name) = &c.name {
        let n = name.trim().chars().count();
        if n == 0 || n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(format!(
                "brand.name must be 1-{MAX_NAME_CHARS} characters without control characters"
            ));
        }
    }
    if let Some(accent) = &c.accent
        && Rgb::parse(accent).is_none()
    {
        return Err(format!(
            "brand.accent must be a colour like \"#0b4f8a\": {accent:?}"
        ));
    }
    if let Some(logo) = &c.logo
        && logo_mime(logo).is_none()
    {
        return Err(format!(
            "brand.logo must be an .svg, .png, .jpg or .webp file: {}",
            logo.display()
        ));
    }
    Ok(())
}

fn logo_mime(path: &std::path::Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => return None,
    })
}

impl Brand {
    fn new(name: String, palette: Palette, logo: Option<Logo>) -> Brand {
        let css = format!(
            "/* The municipality's accent colour (config [brand]), checked for WCAG AA contrast. */\n\
             :root {{ --primary: {}; --primary-dark: {}; --primary-soft: {}; }}\n",
            palette.accent, palette.dark, palette.soft
        );
        Brand {
            name,
            palette,
            logo,
            css,
        }
    }

    /// Reads the logo and fits the accent. A warning (to log) says when the accent was darkened.
    pub fn load(c: &BrandConfig) -> anyhow::Result<(Brand, Option<String>)> {
        validate(c).map_err(anyhow::Error::msg)?;
        let wanted = c
            .accent
            .as_deref()
            .and_then(Rgb::parse)
            .unwrap_or(DEFAULT_ACCENT);
        let (palette, adjusted) = fit_accent(wanted);
        let warning = adjusted.then(|| {
            format!(
                "brand.accent {wanted} has a contrast of {:.1}:1 (WCAG AA needs {MIN_CONTRAST}:1); \
                 the pages use {} ({:.1}:1) instead",
                Palette::of(wanted).worst_contrast(),
                palette.accent,
                palette.worst_contrast()
            )
        });
        let logo = match &c.logo {
            None => None,
            Some(path) => {
                let meta = std::fs::metadata(path).map_err(|e| {
                    anyhow::anyhow!("cannot read brand.logo {}: {e}", path.display())
                })?;
                if meta.len() > MAX_LOGO_BYTES {
                    anyhow::bail!(
                        "brand.logo {} is larger than {} KiB",
                        path.display(),
                        MAX_LOGO_BYTES / 1024
                    );
                }
                let bytes = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("cannot read brand.logo {}: {e}", path.display())
                })?;
                // validate() has checked the extension.
                let mime = logo_mime(path).unwrap_or("application/octet-stream");
                Some(Logo { bytes, mime })
            }
        };
        let name = c
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_NAME)
            .to_owned();
        Ok((Brand::new(name, palette, logo), warning))
    }

    /// A page with the brand applied: the name in the header and the title, the logo before it,
    /// and the accent stylesheet after app.css. The pages mark the places: the header's
    /// `class="brand">townhall`, the title's `– townhall</title>`, app.css's `<link>`.
    pub fn render(&self, html: &str) -> String {
        let name = escape(&self.name);
        let logo = if self.logo.is_some() {
            r#"<img class="brand-logo" src="/brand/logo" alt="">"#
        } else {
            ""
        };
        html.replacen(
            r#"class="brand">townhall"#,
            &format!(r#"class="brand">{logo}<span class="brand-name">{name}</span>"#),
            1,
        )
        .replacen("– townhall</title>", &format!("– {name}</title>"), 1)
        .replacen(
            r#"<link rel="stylesheet" href="/assets/css/app.css">"#,
            &format!(
                r#"<link rel="stylesheet" href="/assets/css/app.css">
<link rel="stylesheet" href="/brand.css">
<meta name="application-name" content="{name}">"#
            ),
            1,
        )
    }
}

/// Text for HTML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_colours() {
        assert_eq!(Rgb::parse("#0b4f8a"), Some(Rgb(0x0b, 0x4f, 0x8a)));
        assert_eq!(Rgb::parse("#fff"), Some(WHITE));
        assert_eq!(Rgb::parse("0b4f8a"), None);
        assert_eq!(Rgb::parse("#0b4f8"), None);
        assert_eq!(Rgb::parse("#gggggg"), None);
        assert_eq!(Rgb(0x0b, 0x4f, 0x8a).to_string(), "#0b4f8a");
    }

    #[test]
    fn contrast_matches_wcag_reference_values() {
        assert!((contrast(BLACK, WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast(WHITE, WHITE) - 1.0).abs() < 1e-9);
        // #767676 on white is the classic 4.54:1.
        assert!((contrast(Rgb(0x76, 0x76, 0x76), WHITE) - 4.54).abs() < 0.01);
    }

    #[test]
    fn the_default_accent_passes_unchanged() {
        let (p, adjusted) = fit_accent(DEFAULT_ACCENT);
        assert!(!adjusted);
        assert_eq!(p.accent, DEFAULT_ACCENT);
        assert!(p.worst_contrast() >= MIN_CONTRAST);
    }

    #[test]
    fn a_light_accent_is_darkened_until_it_passes() {
        // A bright yellow-green fails by far on white.
        let wanted = Rgb(0x9a, 0xcd, 0x32);
        assert!(Palette::of(wanted).worst_contrast() < MIN_CONTRAST);
        let (p, adjusted) = fit_accent(wanted);
        assert!(adjusted);
        assert!(p.worst_contrast() >= MIN_CONTRAST, "{:?}", p);
        // Darkened, not replaced: still the same hue family (green channel dominant).
        assert!(
            p.accent.1 > p.accent.0 && p.accent.1 > p.accent.2,
            "{}",
            p.accent
        );
        // And no darker than needed: one step lighter would fail.
        assert!(contrast(p.accent, WHITE) < 7.0);
    }

    #[test]
    fn every_accent_ends_up_passing() {
        for r in (0..=255).step_by(51) {
            for g in (0..=255).step_by(51) {
                for b in (0..=255).step_by(51) {
                    let (p, _) = fit_accent(Rgb(r, g, b));
                    assert!(
                        p.worst_contrast() >= MIN_CONTRAST,
                        "{} → {:?}",
                        Rgb(r, g, b),
                        p
                    );
                }
            }
        }
    }

    #[test]
    fn validation_refuses_bad_settings() {
        let bad = |c: BrandConfig| validate(&c).unwrap_err();
        assert!(
            bad(BrandConfig {
                accent: Some("blue".into()),
                ..Default::default()
            })
            .contains("brand.accent")
        );
        assert!(
            bad(BrandConfig {
                name: Some("  ".into()),
                ..Default::default()
            })
            .contains("brand.name")
        );
        assert!(
            bad(BrandConfig {
                logo: Some("logo.gif".into()),
                ..Default::default()
            })
            .contains("brand.logo")
        );
        assert!(
            validate(&BrandConfig {
                name: Some("Hørsholm Kommune".into()),
                logo: Some("/etc/townhall/logo.SVG".into()),
                accent: Some("#00594f".into()),
            })
            .is_ok()
        );
    }

    #[test]
    fn render_puts_the_name_logo_and_colours_in_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.svg");
        std::fs::write(&logo, "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
        let (brand, warning) = Brand::load(&BrandConfig {
            name: Some("Hørsholm <Kommune>".into()),
            logo: Some(logo),
            accent: Some("#00594f".into()),
        })
        .unwrap();
        assert!(warning.is_none());
        let page = "<title>Møde – townhall</title>\n<link rel=\"stylesheet\" href=\"/assets/css/app.css\">\n<span class=\"brand\">townhall <span class=\"brand-role\">Studie</span></span>";
        let out = brand.render(page);
        assert!(
            out.contains("<title>Møde – Hørsholm &lt;Kommune&gt;</title>"),
            "{out}"
        );
        assert!(out.contains(r#"<img class="brand-logo" src="/brand/logo" alt=""><span class="brand-name">Hørsholm &lt;Kommune&gt;</span> <span class="brand-role">"#), "{out}");
        assert!(out.contains(r#"<link rel="stylesheet" href="/brand.css">"#));
        assert!(brand.css.contains("--primary: #00594f;"));
    }

    #[test]
    fn load_reports_an_adjusted_accent_and_a_missing_logo() {
        let (_, warning) = Brand::load(&BrandConfig {
            accent: Some("#ffcc00".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(warning.unwrap().contains("#ffcc00"));
        let err = Brand::load(&BrandConfig {
            logo: Some("/nonexistent/logo.png".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("brand.logo"));
    }
}
