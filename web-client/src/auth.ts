// The portal's identity token for this tab. The portal hands it over in the address's fragment
// (`#token=…`, never sent to a server); demo mode signs in on the sign-in page. It lives in
// sessionStorage: closing the tab signs out.
const KEY = "lecture.token";
let memory: string | null = null;

export function token(): string | null {
  try {
    return sessionStorage.getItem(KEY) ?? memory;
  } catch {
    return memory;
  }
}

export function setToken(value: string): void {
  memory = value;
  try {
    sessionStorage.setItem(KEY, value);
  } catch {
    // Kept in memory only.
  }
}

export function clearToken(): void {
  memory = null;
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing stored.
  }
}

/** Takes a token handed over in the fragment, and removes it from the address bar. */
export function adoptFragmentToken(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (match?.[1]) {
    setToken(decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}
