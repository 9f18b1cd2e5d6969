// DOM helpers. Every piece of text goes in through textContent or a text node: nothing here
// (or anywhere in the pages) parses a string as HTML.

/**
 * Builds an element. `attrs` keys:
 *  - `class`, `id`, `type`, `for`, `role`, `aria-*`, `data-*`, … → attributes (strings)
 *  - `text` → textContent
 *  - boolean props (`hidden`, `disabled`, `checked`, …) → set when true
 *  - `on` → { event: handler }
 *  - `value` → the property
 * Children: nodes, strings (become text nodes), arrays, null/undefined/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'value') el.value = v;
    else if (k === 'style') throw new Error('inline styles are not allowed (CSP)');
    else if (v === true) {
      if (k in el && typeof el[k] === 'boolean') el[k] = true;
      el.setAttribute(k, '');
    } else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Replaces the text of `el` only if it changed (keeps screen readers and selections calm). */
export function setText(el, text) {
  const s = String(text ?? '');
  if (el.textContent !== s) el.textContent = s;
}

export function show(el, visible) {
  el.hidden = !visible;
}

/**
 * Updates `container` to show `items` in order, reusing the element of an item whose
 * signature did not change. Keeps the keyboard focus: an element with `data-fkey` that had
 * focus before is focused again after the update, even when its item was rebuilt or moved.
 */
export function syncList(container, items, { key, sig, render }) {
  const old = new Map();
  for (const el of container.children) old.set(el.dataset.key, el);
  const active = document.activeElement;
  const hadFocus = active && active !== document.body && container.contains(active);
  const fkey = hadFocus ? active.dataset.fkey : undefined;

  const els = items.map((item) => {
    const k = String(key(item));
    const s = sig(item);
    let el = old.get(k);
    if (!el || el.dataset.sig !== s) {
      el = render(item);
      el.dataset.key = k;
      el.dataset.sig = s;
    }
    return el;
  });
  els.forEach((el, i) => {
    const at = container.children[i];
    if (at !== el) container.insertBefore(el, at || null);
  });
  while (container.children.length > els.length) container.lastElementChild.remove();

  if (hadFocus && document.activeElement !== active) {
    if (active.isConnected) active.focus({ preventScroll: true });
    else if (fkey) {
      const again = container.querySelector(`[data-fkey="${CSS.escape(fkey)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }
}

/** Number of Unicode characters (code points), as the server counts them. */
export function charCount(s) {
  let n = 0;
  for (const _ of s.trim()) n++;
  return n;
}

/** Calls `fn` at most once per animation frame (or soon, if the tab is hidden). */
export function batcher(fn) {
  let queued = false;
  let raf = 0;
  let timer = 0;
  const run = () => {
    if (!queued) return;
    queued = false;
    cancelAnimationFrame(raf);
    clearTimeout(timer);
    fn();
  };
  return () => {
    if (queued) return;
    queued = true;
    raf = requestAnimationFrame(run);
    timer = setTimeout(run, 200);
  };
}

/**
 * Polite screen-reader announcements through an aria-live region. Bursts are summarised
 * ("5 new comments") instead of read one by one.
 */
export function announcer(region) {
  let pending = [];
  let timer = 0;
  return (kind, text, summary) => {
    pending.push({ kind, text, summary });
    if (timer) return;
    timer = setTimeout(() => {
      timer = 0;
      const items = pending;
      pending = [];
      let msg;
      if (items.length === 1) msg = items[0].text;
      else {
        const byKind = new Map();
        for (const it of items) byKind.set(it.kind, [...(byKind.get(it.kind) || []), it]);
        msg = [...byKind.values()]
          .map((list) => (list.length === 1 || !list[0].summary ? list.map((it) => it.text).join(' ') : list[0].summary(list.length)))
          .join(' ');
      }
      region.textContent = '';
      // A fresh text node in a separate task is announced reliably by screen readers.
      setTimeout(() => {
        region.textContent = msg;
      }, 50);
    }, 700);
  };
}

/** Copies an input's value to the clipboard (or, failing that, selects it for the user to
 * copy); resolves to whether it was copied. */
export async function copyValue(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}
