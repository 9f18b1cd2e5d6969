// The landing page: / — static text, translated, with the language switch.

import { t } from './i18n.js';
import { initPage } from './page.js';

const retitle = () => {
  document.title = t('index.title');
};
initPage(retitle);
retitle();
