// The portal's identity token, shared by every tab of this browser: it lives in localStorage,
// so a lecture opened in a new tab (or a link opened from My page) is signed in like the tab it
// came from, and signing out (or a sign-in the gate no longer takes) signs every tab out.
// Demo mode signs in on the sign-in page; otherwise the portal hands the token over in
// the address's fragment (`#token=…&state=…`, never sent to a server) at the end of a sign-in
// this tab started itself (docs/portal-sign-in.md).
//
// Why the state: a fragment token alone signs in whoever's token it is, so anyone could send a
// link holding *their own* token and the reader would silently act as them (login CSRF: their
// questions and nickname in the attacker's account). The tab keeps a random `state` before it
// sends the person to the portal and adopts a token only when the fragment brings that same
// state back, once.
const KEY = "lecture.token";
/** The `state` of the portal sign-in this tab started, until its answer arrives. */
export const STATE_KEY = "lecture.sign_in_state";
let memory: string | null = null;

export function token(): string | null {
  try {
    return localStorage.getItem(KEY) ?? memory;
  } catch {
    return memory;
  }
}

export function setToken(value: string): void {
  memory = value;
  try {
    localStorage.setItem(KEY, value);
  } catch {
    // Kept in memory only.
  }
}

export function clearToken(): void {
  memory = null;
  try {
    localStorage.removeItem(KEY);
  } catch {
    // Nothing stored.
  }
}

/** Runs `f` when another tab of this browser signs in or out; returns the unsubscriber. */
export function onTokenChange(f: () => void): () => void {
  const listener = (e: StorageEvent) => {
    if (e.key === KEY || e.key === null) f();
  };
  window.addEventListener("storage", listener);
  return () => window.removeEventListener("storage", listener);
}

/** Where the hand-off's pending state is kept: the tab's sessionStorage (a fake in tests). */
export type StateStore = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** The tab's sessionStorage, or a store that keeps nothing where there is none. */
function tabStore(): StateStore {
  try {
    if (typeof sessionStorage !== "undefined") return sessionStorage;
  } catch {
    // Blocked storage (some private modes): no sign-in through the portal can be matched.
  }
  return { getItem: () => null, setItem: () => undefined, removeItem: () => undefined };
}

/** 32 random bytes, base64url: unguessable, and safe in an address. */
export function randomState(bytes: Uint8Array = crypto.getRandomValues(new Uint8Array(32))): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The portal's sign-in address for a hand-off with `state`, coming back to `returnTo`. The
 * portal's own query parameters are kept.
 */
export function portalSignInAddress(signInUrl: string, state: string, returnTo: string): string {
  const url = new URL(signInUrl);
  url.searchParams.set("state", state);
  url.searchParams.set("return_to", returnTo);
  return url.toString();
}

/**
 * Starts a sign-in through the portal: keeps a fresh state for this tab and answers the
 * address to send the person to. Starting again replaces the state: only the latest sign-in's
 * answer is taken.
 */
export function beginPortalSignIn(
  signInUrl: string,
  returnTo: string,
  store: StateStore = tabStore(),
  state: string = randomState(),
): string {
  store.setItem(STATE_KEY, state);
  return portalSignInAddress(signInUrl, state, returnTo);
}

/** What became of a fragment: nothing to take, a token taken, or a token refused. */
export type HandOff = "none" | "adopted" | "refused";

/**
 * Takes the token in `hash` (`#token=…&state=…`) if its state is the one `store` keeps, and
 * forgets that state whatever the answer: a state answers one sign-in, and a foreign link
 * arriving meanwhile spoils it rather than leaving it to be guessed at.
 */
export function adoptHandOff(hash: string, store: StateStore): { outcome: HandOff; token?: string } {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const given = params.get("token");
  if (!given) return { outcome: "none" };
  const expected = store.getItem(STATE_KEY);
  store.removeItem(STATE_KEY);
  const state = params.get("state");
  if (!expected || !state || state !== expected) return { outcome: "refused" };
  return { outcome: "adopted", token: given };
}

let refused = false;

/**
 * Handles a token handed over in the address's fragment: signs in with it only when it
 * answers this tab's own sign-in, and in every case removes it from the address bar (and so
 * from the history and from what a screenshot or a shared link would show). A refused token
 * leaves whoever was signed in signed in.
 */
export function adoptFragmentToken(): HandOff {
  const { outcome, token: given } = adoptHandOff(window.location.hash, tabStore());
  if (outcome === "none") return outcome;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  if (outcome === "adopted" && given) setToken(given);
  if (outcome === "refused") refused = true;
  return outcome;
}

/** Whether a handed-over token was refused in this page's life (the sign-in page says so). */
export function handOffRefused(): boolean {
  return refused;
}
