// The entry gate's HTTP API (see /api/openapi.json). Its types are generated from the Rust
// server's (ts-rs), like the room protocol's.
import type { DemoPeople } from "@gate/DemoPeople";
import type { MyLectures } from "@gate/MyLectures";
import type { Profile } from "@gate/Profile";
import type { RefusalBody } from "@gate/RefusalBody";
import type { SignedIn } from "@gate/SignedIn";
import type { SignInOptions } from "@gate/SignInOptions";
import type { TicketResponse } from "@gate/TicketResponse";
import type { ArchiveView, MyArchive } from "./archive";
import { clearToken, token } from "./auth";
import { gateErrorText } from "./errors";
import { t } from "./i18n";

/** A refused or failed request: the HTTP status and the server's JSON body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly refusal: RefusalBody | null,
  ) {
    super(message);
  }

  /**
   * The explanation in the reader's language: the client's own text for the code, never the
   * node's English sentence (src/errors.ts).
   */
  localized(): string {
    if (this.status === 0) return t("error_network");
    if (this.status === 401 && this.code !== "token_expired") return t("error_signed_out");
    return gateErrorText(this.code, this.status);
  }
}

/**
 * Longest a request may take: a network that drops without a word would otherwise leave a
 * reconnecting room waiting on its ticket for as long as the browser's TCP gives up (minutes).
 */
export const REQUEST_TIMEOUT_MS = 10_000;

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const bearer = token();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    throw new ApiError(0, "network", e instanceof Error ? e.message : String(e), null);
  }
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const err = (json ?? {}) as { error?: string; message?: string; message_ja?: string };
    if (response.status === 401) clearToken();
    const refusal = typeof err.message_ja === "string" ? (json as RefusalBody) : null;
    throw new ApiError(response.status, err.error ?? `http_${response.status}`, err.message ?? text, refusal);
  }
  return json as T;
}

export const api = {
  signInOptions: () => request<SignInOptions>("GET", "/api/v1/sign-in"),
  demoUsers: () => request<DemoPeople>("GET", "/api/v1/demo/users"),
  demoSignIn: (user: string) => request<SignedIn>("POST", "/api/v1/demo/sign-in", { user }),
  myLectures: () => request<MyLectures>("GET", "/api/v1/me/lectures"),
  profile: () => request<Profile>("GET", "/api/v1/me/profile"),
  saveProfile: (p: Profile) => request<Profile>("PUT", "/api/v1/me/profile", p),
  archive: (lecture: string) => request<ArchiveView>("GET", `/api/archive/${encodeURIComponent(lecture)}`),
  myArchives: () => request<{ archives: MyArchive[] }>("GET", "/api/v1/me/archives"),
  ticket: (lecture: string) =>
    request<TicketResponse>("POST", `/api/v1/lectures/${encodeURIComponent(lecture)}/ticket`),
};
