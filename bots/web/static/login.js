// A login link's page posts the link at once; the page itself (which a link
// preview may fetch) does not use it up.
'use strict';
const linkForm = document.getElementById('link-form');
if (linkForm) linkForm.submit();
