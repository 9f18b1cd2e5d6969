// The dead end for a meeting link that leads nowhere (served with 404 by the server): what
// happened and where to go instead, translated like every page.

import { t } from './i18n.js';
import { initPage } from './page.js';

const retitle = () => {
  document.title = `${t('notfound.title')} – ${t('app.name')}`;
};
initPage(retitle);
retitle();
