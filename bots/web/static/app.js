// The web chat's script: sending, the reply stream, and the page's buttons.
// Hand-written, no build step. Every piece of HTML it inserts comes from the
// server's Markdown renderer (raw HTML escaped, unsafe links dropped); the
// user's own text is only ever set as text.
'use strict';

(() => {
  const root = document.documentElement;
  const base = root.dataset.base || '';
  // The one Trusted Types policy the CSP allows: it passes the server's
  // rendered Markdown (see above) and nothing else uses innerHTML.
  const policy = window.trustedTypes && window.trustedTypes.createPolicy
    ? window.trustedTypes.createPolicy('chatbot', { createHTML: (s) => s })
    : { createHTML: (s) => s };

  const $ = (id) => document.getElementById(id);
  const main = $('main');
  if (!main) return;
  const messages = $('messages');
  const scroller = $('scroll');
  const form = $('composer');
  const box = $('message');
  const sendBtn = $('send');
  const stopBtn = $('stop');
  const fileInput = $('files');
  const attached = $('attached');
  const toast = $('toast');
  const welcome = $('welcome');
  const modelPick = $('model');
  const personaPick = $('persona');

  let convId = main.dataset.conversationId || '';
  let last = main.dataset.last || '';
  let busy = main.hasAttribute('data-busy');
  let source = null;
  let retry = 0;
  let pending = []; // files to send with the next message

  // fragment parses the server's rendered HTML.
  const fragment = (html) => {
    const t = document.createElement('template');
    t.innerHTML = policy.createHTML(html);
    return t.content;
  };

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  async function request(method, path, body) {
    const res = await fetch(base + path, {
      method, body, credentials: 'same-origin', headers: { Accept: 'application/json' },
    });
    if (res.status === 401) {
      location.href = base + '/';
      throw new Error('Please log in again.');
    }
    let data = {};
    if (res.status !== 204) {
      try { data = await res.json(); } catch (e) { data = {}; }
    }
    if (!res.ok) throw new Error(data.error || `The server answered ${res.status}.`);
    return data;
  }

  const form1 = (fields) => {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fields)) fd.append(k, v);
    return fd;
  };

  let toastTimer = 0;
  function flash(content, long) {
    toast.replaceChildren(typeof content === 'string' ? document.createTextNode(content) : content);
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, long ? 8000 : 4000);
  }

  // Scrolling: the view follows a growing reply while the reader is at the end.
  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const toBottom = () => { scroller.scrollTop = scroller.scrollHeight; };

  function setBusy(b) {
    busy = b;
    sendBtn.hidden = b;
    stopBtn.hidden = !b;
  }

  const fileURL = (sha) => `${base}/c/${convId}/file/${sha}`;

  function userElement(u) {
    const m = el('div', 'msg user');
    m.dataset.role = 'user';
    const files = (u.files || []).filter((f) => /^[0-9a-f]{64}$/.test(f.sha));
    if (files.length) {
      const box = el('div', 'files');
      for (const f of files) {
        if (f.image) {
          const a = el('a', 'thumb');
          a.href = fileURL(f.sha);
          a.target = '_blank';
          const img = el('img');
          img.src = fileURL(f.sha);
          img.alt = f.name;
          a.append(img);
          box.append(a);
        } else {
          box.append(el('span', 'chip', '📄 ' + f.name));
        }
      }
      m.append(box);
    }
    if (u.text) m.append(el('div', 'text', u.text));
    return m;
  }

  function assistantElement() {
    const m = el('div', 'msg assistant pending');
    m.dataset.role = 'assistant';
    m.append(el('div', 'body'));
    return m;
  }

  // The stored messages, without the commands' answers shown in this tab only.
  const turns = () => [...messages.querySelectorAll('.msg:not(.ephemeral)')];

  // removeLastTurn takes away the last question and its answer (regenerate,
  // edit: the new turn takes their place).
  function removeLastTurn() {
    for (const a of messages.querySelectorAll('.actions')) a.remove();
    const all = turns();
    while (all.length && all[all.length - 1].dataset.role === 'assistant') all.pop().remove();
    if (all.length && all[all.length - 1].dataset.role === 'user') all.pop().remove();
  }

  // apply shows one event of the stream: a turn's reply from block `from` on.
  function apply(ev) {
    const stick = atBottom();
    let a = messages.querySelector(`.msg.assistant[data-turn="${ev.turn}"]`);
    if (!a) {
      if (ev.redo) removeLastTurn();
      const u = userElement(ev.user || { text: '' });
      u.dataset.turn = ev.turn;
      a = assistantElement();
      a.dataset.turn = ev.turn;
      messages.append(u, a);
      welcome.hidden = true;
    }
    const body = a.querySelector('.body');
    while (body.children.length > ev.from) body.lastElementChild.remove();
    for (const html of ev.blocks) {
      const blk = el('div', 'blk');
      blk.append(fragment(html));
      body.append(blk);
    }
    a.classList.toggle('pending', body.children.length === 0 && !ev.done);
    a.classList.toggle('streaming', !ev.done);
    setBusy(!ev.done);
    if (ev.done) refreshActions();
    if (stick) toBottom();
  }

  // connect follows the conversation's stream. The browser reconnects by itself
  // with Last-Event-ID; the first connection says what the page shows already.
  function connect() {
    if (!convId) return;
    if (source) source.close();
    const q = last ? `?last=${encodeURIComponent(last)}` : '';
    source = new EventSource(`${base}/c/${convId}/events${q}`);
    source.addEventListener('open', () => { retry = 0; });
    source.addEventListener('turn', (e) => {
      last = e.lastEventId;
      apply(JSON.parse(e.data));
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        retry = Math.min(retry + 1, 6);
        setTimeout(connect, 1000 * retry);
      }
    });
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && convId && (!source || source.readyState === EventSource.CLOSED)) connect();
  });

  function addConversation(id, title) {
    const list = $('convs');
    for (const li of list.querySelectorAll('li.active')) li.classList.remove('active');
    const li = el('li', 'active');
    const a = el('a', '', title);
    a.href = `${base}/c/${id}`;
    a.dataset.conversation = id;
    a.setAttribute('aria-current', 'page');
    li.append(a);
    list.prepend(li);
  }

  function setTitle(title) {
    $('title').textContent = title;
    document.title = `${title} · chatbot`;
    const link = document.querySelector(`#convs a[data-conversation="${convId}"]`);
    if (link) link.textContent = title;
  }

  function opened(id, title) {
    convId = id;
    main.dataset.conversationId = id;
    history.replaceState(null, '', `${base}/c/${id}`);
    addConversation(id, title);
    setTitle(title);
    $('more').hidden = false;
    $('export').href = `${base}/c/${id}/export`;
    connect();
  }

  // showCommand shows a command and its answer in this tab only (commands are
  // not part of the conversation).
  function showCommand(text, r) {
    const stick = atBottom();
    const u = userElement({ text });
    u.classList.add('ephemeral');
    const a = el('div', 'msg assistant ephemeral');
    a.dataset.role = 'assistant';
    const body = el('div', 'body');
    body.append(fragment(r.html || ''));
    a.append(body);
    if (r.choices && r.choices.length) {
      const row = el('div', 'choices');
      for (const c of r.choices) {
        const b = el('button', c.current ? 'choice current' : 'choice', c.label);
        b.type = 'button';
        b.addEventListener('click', () => sendText(c.command));
        row.append(b);
      }
      a.append(row);
    }
    messages.append(u, a);
    welcome.hidden = true;
    if (stick) toBottom();
  }

  async function sendText(text) {
    const fd = form1({ message: text });
    if (convId) fd.append('conversation', convId);
    try {
      const r = await request('POST', '/send', fd);
      if (r.reload) { location.reload(); return; }
      if (r.command) showCommand(text, r);
    } catch (e) {
      flash(e.message);
    }
  }

  async function send() {
    const text = box.value.replace(/^[\r\n]+/, '');
    if (!text.trim() && !pending.length) return;
    const command = /^\/[a-z]/i.test(text.trim()) && !pending.length;
    if (busy && !command) {
      flash('Still answering. Wait for it, or press Stop.');
      return;
    }
    const fd = form1({ message: text });
    if (convId) fd.append('conversation', convId);
    else {
      if (modelPick) fd.append('model', modelPick.value);
      if (personaPick) fd.append('persona', personaPick.value);
    }
    for (const f of pending) fd.append('files', f, f.name);
    const files = pending;
    const wasBusy = busy;
    box.value = '';
    pending = [];
    showAttached();
    resize();
    // Busy until the stream says the reply is done (which may come before
    // this request's answer).
    if (!command) setBusy(true);
    try {
      const r = await request('POST', '/send', fd);
      if (r.reload) { location.reload(); return; }
      if (r.command) { setBusy(wasBusy); showCommand(text, r); return; }
      if (!convId) opened(r.conversation, r.title);
    } catch (e) {
      setBusy(wasBusy);
      if (!box.value) box.value = text;
      pending = files;
      showAttached();
      resize();
      flash(e.message);
    }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); send(); });
  // Enter sends, Shift+Enter starts a new line. A key press gives at most
  // one line break, and the Enter that sends none, even when the break comes
  // as an input event of its own.
  let lineBreaks = -1; // line breaks the Enter being pressed may still give (-1: no Enter)
  box.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    lineBreaks = e.shiftKey ? 1 : 0;
    if (!e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      send();
    }
  });
  box.addEventListener('keyup', (e) => { if (e.key === 'Enter') lineBreaks = -1; });
  box.addEventListener('beforeinput', (e) => {
    const lineBreak = e.inputType === 'insertLineBreak' || e.inputType === 'insertParagraph' ||
      (e.inputType === 'insertText' && /^[\r\n]+$/.test(e.data || ''));
    if (!lineBreak || lineBreaks < 0) return;
    if (lineBreaks === 0) e.preventDefault();
    else lineBreaks--;
  });
  const resize = () => {
    box.style.height = 'auto';
    box.style.height = Math.min(box.scrollHeight + 2, 240) + 'px';
  };
  box.addEventListener('input', resize);

  stopBtn.addEventListener('click', async () => {
    if (!convId) return;
    try { await request('POST', `/c/${convId}/stop`); } catch (e) { flash(e.message); }
  });

  // Files: picked, pasted or dropped; shown as chips until sent.
  function showAttached() {
    for (const img of attached.querySelectorAll('img')) URL.revokeObjectURL(img.src);
    attached.replaceChildren();
    pending.forEach((f, i) => {
      const chip = el('span', 'chip');
      if (f.type.startsWith('image/')) {
        const img = el('img');
        img.src = URL.createObjectURL(f);
        img.alt = '';
        chip.append(img);
      }
      chip.append(document.createTextNode(f.name));
      const x = el('button', 'remove', '×');
      x.type = 'button';
      x.setAttribute('aria-label', `Remove ${f.name}`);
      x.addEventListener('click', () => { pending.splice(i, 1); showAttached(); });
      chip.append(x);
      attached.append(chip);
    });
  }
  const addFiles = (list) => {
    pending.push(...list);
    showAttached();
    box.focus();
  };
  fileInput.addEventListener('change', () => { addFiles([...fileInput.files]); fileInput.value = ''; });
  box.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (files.length) { e.preventDefault(); addFiles(files); }
  });
  form.addEventListener('dragover', (e) => { e.preventDefault(); form.classList.add('drop'); });
  form.addEventListener('dragleave', () => form.classList.remove('drop'));
  form.addEventListener('drop', (e) => {
    e.preventDefault();
    form.classList.remove('drop');
    addFiles([...e.dataTransfer.files]);
  });

  // Pickers: a conversation's model and persona; a new chat takes them with
  // its first message.
  for (const [pick, cmd] of [[modelPick, '/model '], [personaPick, '/persona ']]) {
    if (!pick) continue;
    pick.addEventListener('change', async () => {
      if (!convId) return;
      try {
        const r = await request('POST', '/send', form1({ conversation: convId, message: cmd + pick.value }));
        if (r.html) flash(fragment(r.html));
      } catch (e) { flash(e.message); }
    });
  }

  // Buttons under the messages (beside them in the list, so that a message's
  // text is its text alone): copy any answer; regenerate the last answer;
  // edit the last question.
  function refreshActions() {
    for (const a of messages.querySelectorAll('.actions')) a.remove();
    const all = turns();
    for (const m of all) {
      if (m.dataset.role !== 'assistant' || m.classList.contains('streaming')) continue;
      const row = el('div', 'actions assistant');
      row.append(button('Copy', 'Copy answer', () => copy(m.querySelector('.body').innerText)));
      m.after(row);
    }
    if (busy || all.length < 2) return;
    const a = all[all.length - 1];
    const u = all[all.length - 2];
    if (a.dataset.role !== 'assistant' || u.dataset.role !== 'user') return;
    a.nextElementSibling.append(button('Regenerate', 'Regenerate answer', regenerate));
    const row = el('div', 'actions user');
    row.append(button('Edit', 'Edit question', () => editQuestion(u)));
    u.after(row);
  }

  function button(label, aria, fn) {
    const b = el('button', 'action', label);
    b.type = 'button';
    b.setAttribute('aria-label', aria);
    b.addEventListener('click', fn);
    return b;
  }

  async function regenerate() {
    if (busy) return;
    setBusy(true);
    try {
      await request('POST', `/c/${convId}/regenerate`);
    } catch (e) {
      setBusy(false);
      flash(e.message);
    }
  }

  function editQuestion(u) {
    if (busy || u.querySelector('.edit')) return;
    const old = u.querySelector('.text');
    const editor = el('div', 'edit');
    const ta = el('textarea');
    ta.value = old ? old.textContent : '';
    ta.rows = Math.min(10, ta.value.split('\n').length + 1);
    ta.setAttribute('aria-label', 'Edited question');
    const save = button('Send', 'Send edited question', async () => {
      if (!ta.value.trim()) return;
      setBusy(true);
      try {
        await request('POST', `/c/${convId}/edit`, form1({ message: ta.value }));
      } catch (e) {
        setBusy(false);
        flash(e.message);
      }
    });
    const cancel = button('Cancel', 'Cancel editing', () => { editor.remove(); if (old) old.hidden = false; });
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); save.click(); }
      if (e.key === 'Escape') cancel.click();
    });
    const row = el('div', 'edit-buttons');
    row.append(cancel, save);
    editor.append(ta, row);
    if (old) old.hidden = true;
    u.append(editor);
    ta.focus();
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      // Without a secure context (plain http on a LAN address) there is no
      // clipboard API: copy through a selection.
      const ta = el('textarea');
      ta.value = text;
      ta.className = 'offscreen';
      document.body.append(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    flash('Copied.');
  }

  // Code blocks' copy buttons.
  messages.addEventListener('click', (e) => {
    const b = e.target.closest('button.copy');
    if (!b) return;
    const pre = b.closest('.code').querySelector('pre');
    copy(pre.innerText.replace(/\n$/, ''));
    b.dataset.copied = '';
    setTimeout(() => { delete b.dataset.copied; }, 1500);
  });

  // Older messages load when the top of the list comes near the view, and
  // again while it stays near (a quick scroll may outrun one page).
  const older = $('older');
  if (older && 'IntersectionObserver' in window) {
    let loading = false;
    const near = () => older.isConnected && older.getBoundingClientRect().bottom > scroller.getBoundingClientRect().top - 400;
    const loadOlder = async () => {
      if (loading || !older.isConnected) return;
      loading = true;
      try {
        const r = await request('GET', `/c/${convId}/older?before=${older.dataset.before}`);
        const height = scroller.scrollHeight;
        older.after(fragment(r.html));
        scroller.scrollTop += scroller.scrollHeight - height;
        if (r.before) older.dataset.before = r.before;
        else { io.disconnect(); older.remove(); }
        refreshActions();
      } catch (e) {
        flash(e.message);
      } finally {
        loading = false;
      }
      requestAnimationFrame(() => { if (near()) loadOlder(); });
    };
    const io = new IntersectionObserver((entries) => {
      if (entries.some((en) => en.isIntersecting)) loadOlder();
    }, { root: scroller, rootMargin: '400px 0px 0px 0px' });
    io.observe(older);
  }

  // The conversation's menu: rename, delete.
  const more = $('more');
  $('rename').addEventListener('click', async () => {
    more.open = false;
    const title = prompt('Rename this conversation:', $('title').textContent);
    if (!title || !title.trim()) return;
    try {
      const r = await request('POST', `/c/${convId}/rename`, form1({ title }));
      setTitle(r.title);
    } catch (e) { flash(e.message); }
  });
  $('delete').addEventListener('click', async () => {
    more.open = false;
    if (!confirm('Delete this conversation?')) return;
    try {
      await request('POST', `/c/${convId}/delete`);
      location.href = base + '/';
    } catch (e) { flash(e.message); }
  });
  document.addEventListener('click', (e) => {
    if (more.open && !more.contains(e.target)) more.open = false;
  });

  // The conversation list is a drawer on narrow screens.
  const menu = $('menu');
  const scrim = $('scrim');
  const drawer = (open) => {
    document.body.classList.toggle('nav-open', open);
    menu.setAttribute('aria-expanded', String(open));
    scrim.hidden = !open;
  };
  menu.addEventListener('click', () => drawer(!document.body.classList.contains('nav-open')));
  scrim.addEventListener('click', () => drawer(false));

  setBusy(busy);
  refreshActions();
  toBottom();
  connect();
  if (window.matchMedia('(pointer: fine)').matches) box.focus();
})();
