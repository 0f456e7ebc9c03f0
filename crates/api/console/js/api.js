// The HTTP API as the console uses it: same-origin cookies, the CSRF header on unsafe methods,
// errors carrying the API's own `detail`, and server-sent event streams.

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** An answer of the API other than 2xx, with the API's words for it. */
export class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(describe(status, detail, retryAfter));
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

function describe(status, detail, retryAfter) {
  let text = typeof detail === 'string' ? detail : detailText(detail);
  if (status === 429) {
    const wait = retryAfter ? `retry in ${retryAfter} s` : 'retry a little later';
    text = `${text || 'Too many requests'} (${wait})`;
  }
  return text || `HTTP ${status}`;
}

/** Validation errors (422) come as a list of {loc, msg}. */
function detailText(detail) {
  if (!Array.isArray(detail)) return detail ? JSON.stringify(detail) : '';
  return detail.map((d) => `${(d.loc || []).slice(1).join('.') || 'request'}: ${d.msg}`).join('; ');
}

let onUnauthorized = () => {};
/** What to do when the session is gone (a 401 on anything but the sign-in itself). */
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function cookie(name) {
  const hit = document.cookie.split('; ').find((c) => c.startsWith(`${name}=`));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : '';
}

/** Calls `/api/v1{path}`; JSON in and out. `form` sends a URL-encoded body instead. */
export async function api(path, { method = 'GET', body, form, signal } = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (form) {
    payload = new URLSearchParams(form);
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (UNSAFE.has(method)) {
    const csrf = cookie('csrf_token');
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  const res = await fetch(`/api/v1${path}`, { method, headers, body: payload, signal, credentials: 'same-origin' });
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const error = new ApiError(res.status, data && data.detail !== undefined ? data.detail : data, res.headers.get('Retry-After'));
    if (res.status === 401 && !path.startsWith('/auth/login')) onUnauthorized(error);
    throw error;
  }
  return data;
}

/** Builds a query string from the defined values of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Follows a server-sent event stream at `/api/v1{path}`; `onFrame(name, data)` gets every frame
 * (`message` when unnamed). Returns a function that closes it.
 */
export function stream(path, onFrame, onError = () => {}) {
  const source = new EventSource(`/api/v1${path}`, { withCredentials: true });
  const handle = (name) => (e) => {
    let data;
    try { data = JSON.parse(e.data); } catch { data = e.data; }
    onFrame(name, data);
  };
  source.onmessage = handle('message');
  source.addEventListener('notification', handle('notification'));
  source.onerror = () => onError(source);
  return () => source.close();
}
