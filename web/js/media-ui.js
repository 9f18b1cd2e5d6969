// Small pieces of UI that the studio's broadcast panel and the viewer's stage share.

import { copyValue, h, setText } from './dom.js';
import { errorText, getLang, has, t } from './i18n.js';
import { formatBitrate } from './media-stats.js';

/** Human text for a media error (an HTTP code of the media routes, or a browser error name). */
export function mediaErrorText(err) {
  if (!err) return '';
  const code = err.code || err.name || 'unknown';
  return has(`media.err.${code}`) ? t(`media.err.${code}`) : errorText(code);
}

/** Fills a <dl> with [term, value] pairs (rebuilt only when a value changed). */
export function statsList(dl, pairs) {
  const key = JSON.stringify(pairs);
  if (dl.dataset.sig === key) return;
  dl.dataset.sig = key;
  dl.replaceChildren(...pairs.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

/** The common lines of a quality list: round trip, bit rate, loss. */
export function qualityPairs(q, bitrateKey) {
  return [
    [t('media.rtt'), q.rttMs === null ? '–' : t('media.ms', { n: q.rttMs })],
    [t(bitrateKey), formatBitrate(q.bitrate, getLang())],
    [t('media.loss'), `${q.lossPct.toLocaleString(getLang() === 'da' ? 'da-DK' : 'en-GB', { maximumFractionDigits: 1 })} %`],
  ];
}

/** Shows "good / fair / poor" as words (not colour alone). */
export function gradeText(el, grade) {
  setText(el, grade ? t(`media.grade.${grade}`) : '');
  el.dataset.grade = grade || '';
}

/** Copies an input's value to the clipboard; says in `status` whether it worked. */
export async function copyField(input, status) {
  setText(status, t((await copyValue(input)) ? 'media.copied' : 'media.copyFailed'));
}
