// The dashboard's only script: folder upload with progress, one-key review actions, and Try it. Plain browser
// JavaScript served as is (no build step); everything it shows from the server goes in through textContent.

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

function post(url, body, type) {
  const headers = { 'x-csrf-token': csrf(), accept: 'application/json' };
  if (type) headers['content-type'] = type;
  return fetch(url, { method: 'POST', body, headers, credentials: 'same-origin' });
}

// ---- Upload: a folder of label folders, from the file input or dropped, one photo per request.

async function filesOfEntry(entry, path, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ path: `${path}${file.name}`, file });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await filesOfEntry(child, `${path}${entry.name}/`, out);
    }
  }
}

async function droppedFiles(dataTransfer) {
  const out = [];
  const entries = [...dataTransfer.items].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  for (const e of entries) await filesOfEntry(e, '', out);
  return out;
}

async function uploadAll(zone, files) {
  const bar = document.getElementById('upload-progress');
  const status = document.getElementById('upload-status');
  const refusedList = document.getElementById('upload-refused');
  refusedList.replaceChildren();
  const counts = { uploaded: 0, skipped: 0, refused: 0 };
  bar.hidden = false;
  bar.max = files.length;
  bar.value = 0;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const { path, file } = files[next++];
      const url = `${zone.dataset.uploadUrl}?path=${encodeURIComponent(path)}`;
      let r;
      try {
        const res = await post(url, file, 'application/octet-stream');
        r = await res.json();
        if (!res.ok)
          r = {
            status: 'refused',
            code: r.error?.code ?? String(res.status),
            message: r.error?.message ?? '',
          };
      } catch (err) {
        r = { status: 'refused', code: 'network_error', message: String(err) };
      }
      counts[r.status] = (counts[r.status] ?? 0) + 1;
      if (r.status === 'refused') {
        const li = document.createElement('li');
        li.textContent = `${path}: ${r.code}: ${r.message}`;
        refusedList.append(li);
      }
      bar.value += 1;
      status.textContent = `${bar.value} of ${files.length} sent`;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  status.textContent = `uploaded ${counts.uploaded}, already there ${counts.skipped}, refused ${counts.refused}. The project retrains after a quiet period; reload to see the photos once they are indexed.`;
  status.dataset.done = '1';
}

function setUpUpload() {
  const zone = document.getElementById('drop-zone');
  if (!zone) return;
  const input = document.getElementById('folder-input');
  input.addEventListener('change', () => {
    const files = [...input.files].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
    if (files.length) void uploadAll(zone, files);
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const files = await droppedFiles(e.dataTransfer);
    if (files.length) void uploadAll(zone, files);
  });
}

// ---- Queues (Suspects, Review): j/k move, and each item's forms answer to their data-shortcut key.

function toast(text, kind) {
  let box = document.getElementById('toast');
  if (!box) {
    box = document.createElement('p');
    box.id = 'toast';
    box.setAttribute('role', 'status');
    document.querySelector('main').prepend(box);
  }
  box.className = `notice ${kind}`;
  box.textContent = text;
}

async function submitInline(form) {
  const item = form.closest('.queue-item');
  if (item?.dataset.busy) return;
  if (item) item.dataset.busy = '1';
  try {
    const res = await post(
      form.action,
      new URLSearchParams(new FormData(form)),
      'application/x-www-form-urlencoded',
    );
    const body = await res.json();
    if (!res.ok) {
      toast(`${body.error?.code}: ${body.error?.message}`, 'error');
      return;
    }
    toast(body.message, 'ok');
    if (item) {
      const next = item.nextElementSibling ?? item.previousElementSibling;
      item.remove();
      next?.focus();
    }
  } finally {
    if (item) delete item.dataset.busy;
  }
}

function setUpQueues() {
  const items = () => [...document.querySelectorAll('.queue-item')];
  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.inline) return;
    e.preventDefault();
    void submitInline(form);
  });
  if (items().length === 0) return;
  items()[0].focus();
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
    const all = items();
    const current = document.activeElement?.closest?.('.queue-item') ?? all[0];
    if (!current) return;
    if (e.key === 'j' || e.key === 'ArrowDown') {
      (all[all.indexOf(current) + 1] ?? current).focus();
      e.preventDefault();
      return;
    }
    if (e.key === 'k' || e.key === 'ArrowUp') {
      (all[all.indexOf(current) - 1] ?? current).focus();
      e.preventDefault();
      return;
    }
    const form = current.querySelector(`form[data-shortcut="${CSS.escape(e.key)}"]`);
    if (form) {
      e.preventDefault();
      void submitInline(form);
    }
  });
}

// ---- Try it: one photo to the current version, the answer shown as the API gives it.

function row(text) {
  const p = document.createElement('p');
  p.textContent = text;
  return p;
}

async function tryPhoto(zone, file) {
  const preview = document.getElementById('try-preview');
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  await classify(zone.dataset.tryUrl, file, file.type || 'application/octet-stream');
}

// A text project's Try it: the text goes as text/plain, as the API takes it.
function setUpTryText() {
  const form = document.getElementById('try-text-form');
  if (!form) return;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = document.getElementById('try-text').value;
    void classify(form.dataset.tryUrl, text, 'text/plain; charset=utf-8');
  });
}

async function classify(url, body, type) {
  const out = document.getElementById('try-result');
  out.replaceChildren(row('classifying...'));
  delete out.dataset.done;
  const res = await post(url, body, type);
  const answer = await res.json();
  if (!res.ok) {
    out.replaceChildren(row(`${answer.error?.code}: ${answer.error?.message}`));
    out.dataset.done = '1';
    return;
  }
  showAnswer(out, answer);
}

function showAnswer(out, body) {
  const list = document.createElement('ol');
  list.id = 'predictions';
  for (const p of body.predictions) {
    const li = document.createElement('li');
    li.textContent = `${p.label} ${p.score.toFixed(3)}`;
    list.append(li);
  }
  const unknown =
    body.unknown === null
      ? 'no outlier detector'
      : body.unknown
        ? 'UNKNOWN: unlike the training data'
        : 'known';
  const t = body.timingsMs ?? {};
  out.replaceChildren(
    list,
    row(
      `unknown: ${unknown}${body.outlierScore != null ? ` (outlier score ${body.outlierScore.toFixed(2)})` : ''}`,
    ),
    row(`timings: decode ${t.decode} ms, backbone ${t.backbone} ms, head ${t.head} ms, total ${t.total} ms`),
    row(`version ${body.model?.version}`),
  );
  out.dataset.done = '1';
}

// ---- Texts of a text project, fetched as plain text and set as text (never as markup), like lazy thumbnails.
async function loadTexts() {
  for (const el of document.querySelectorAll('[data-text-src]')) {
    try {
      const res = await fetch(el.dataset.textSrc, { credentials: 'same-origin' });
      el.textContent = res.ok ? await res.text() : `(${res.status}: could not read this text)`;
    } catch (err) {
      el.textContent = `(could not read this text: ${err.message})`;
    }
    el.dataset.loaded = '1';
  }
}

// The webcam frame goes through the same request as a dropped photo: a JPEG of what the video shows.
async function startWebcam(zone) {
  const video = document.getElementById('webcam-video');
  const out = document.getElementById('try-result');
  if (!navigator.mediaDevices?.getUserMedia) {
    out.replaceChildren(row('webcam: this browser offers no camera here (it needs 127.0.0.1 or localhost)'));
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    out.replaceChildren(row(`webcam: ${err.message}`));
    return;
  }
  video.hidden = false;
  // Marked once frames have a size, for whoever waits on the camera (a test; a page cannot eval a predicate).
  const ready = () => {
    if (video.videoWidth > 0) video.dataset.ready = '1';
  };
  video.addEventListener('loadedmetadata', ready);
  video.addEventListener('resize', ready);
  ready();
  const capture = document.getElementById('webcam-capture');
  capture.hidden = false;
  capture.onclick = () => {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    canvas.toBlob((blob) => blob && void tryPhoto(zone, blob), 'image/jpeg', 0.92);
  };
}

function setUpTry() {
  const zone = document.getElementById('try-zone');
  if (!zone) return;
  document.getElementById('webcam-start').addEventListener('click', () => void startWebcam(zone));
  const input = document.getElementById('try-input');
  input.addEventListener('change', () => input.files[0] && void tryPhoto(zone, input.files[0]));
  zone.addEventListener('dragover', (e) => e.preventDefault());
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    if (file) void tryPhoto(zone, file);
  });
}

setUpUpload();
setUpQueues();
setUpTry();
setUpTryText();
void loadTexts();
