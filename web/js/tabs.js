// Tabs that exist only on a narrow screen: on a phone the citizen's Questions, Chat and Poll
// panels are tabs under the player (WAI-ARIA tabs pattern: arrow keys, Home/End, roving
// tabindex); on a wide screen the tab list is hidden and every panel is shown, so nothing is
// ever out of reach behind a tab that is not there.

const NARROW = '(max-width: 63.99rem)';

/**
 * Wires `tablist` (its [role=tab] buttons point at their panels with aria-controls). Returns
 * { select(id), setAvailable(id, yes), setCount(id, n), narrow() }; a tab that is not
 * available is hidden with its panel, and the first available one is selected instead.
 */
export function initTabs(tablist) {
  const tabs = [...tablist.querySelectorAll('[role=tab]')];
  const panel = (tab) => document.getElementById(tab.getAttribute('aria-controls'));
  const available = new Map(tabs.map((tab) => [tab.id, !tab.hidden]));
  const mq = matchMedia(NARROW);
  let selected = tabs[0].id;

  const usable = () => tabs.filter((tab) => available.get(tab.id));

  function apply() {
    const narrow = mq.matches;
    if (!available.get(selected)) selected = usable()[0]?.id ?? tabs[0].id;
    tablist.hidden = !narrow;
    for (const tab of tabs) {
      const on = tab.id === selected;
      const p = panel(tab);
      tab.hidden = !available.get(tab.id);
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      if (narrow) {
        p.setAttribute('role', 'tabpanel');
        p.hidden = !on || !available.get(tab.id);
      } else {
        p.removeAttribute('role');
        p.hidden = !available.get(tab.id);
      }
    }
    document.body.classList.toggle('has-tabs', narrow);
  }

  function select(id, focus = false) {
    if (!available.get(id)) return;
    selected = id;
    apply();
    if (focus) document.getElementById(id).focus();
  }

  for (const tab of tabs) tab.addEventListener('click', () => select(tab.id));
  tablist.addEventListener('keydown', (e) => {
    const list = usable();
    const i = list.findIndex((tab) => tab.id === selected);
    let next = null;
    if (e.key === 'ArrowRight') next = list[(i + 1) % list.length];
    else if (e.key === 'ArrowLeft') next = list[(i - 1 + list.length) % list.length];
    else if (e.key === 'Home') next = list[0];
    else if (e.key === 'End') next = list[list.length - 1];
    if (!next) return;
    e.preventDefault();
    select(next.id, true);
  });
  mq.addEventListener('change', apply);
  apply();

  return {
    select,
    narrow: () => mq.matches,
    setAvailable(id, yes) {
      if (available.get(id) === yes) return;
      available.set(id, yes);
      apply();
    },
    setCount(id, n) {
      const el = document.getElementById(`${id}-n`);
      const s = n ? String(n) : '';
      if (el && el.textContent !== s) el.textContent = s;
    },
  };
}
