// Every error a node can answer with, in the reader's language. The node's own sentences are
// English (and a Japanese one for entry refusals) written for logs and API users; the client
// shows its own text for each stable code instead, so a Japanese reader never gets English.
// `test/errors.test.ts` checks every code the protocol and the gate define has both texts.
import type { ErrorCode } from "@protocol/ErrorCode";
import { type Key, t } from "./i18n";

/** The text of each room error code (docs/protocol.md §5): `room_error_<code>`. */
export const ROOM_ERRORS: Record<ErrorCode, Key> = {
  bad_command: "room_error_bad_command",
  already_entered: "room_error_already_entered",
  not_allowed: "room_error_not_allowed",
  wrong_phase: "room_error_wrong_phase",
  seat_out_of_range: "room_error_seat_out_of_range",
  seat_taken: "room_error_seat_taken",
  chat_empty: "room_error_chat_empty",
  text_too_long: "room_error_text_too_long",
  invalid_characters: "room_error_invalid_characters",
  muted: "room_error_muted",
  rate_limited: "room_error_rate_limited",
  unknown_emotion: "room_error_unknown_emotion",
  not_found: "room_error_not_found",
  ambiguous_nickname: "room_error_ambiguous_nickname",
  not_a_question: "room_error_not_a_question",
  invalid_argument: "room_error_invalid_argument",
  already_voted: "room_error_already_voted",
};

/** The codes of the gate's HTTP refusals a page can get (`{"error": code}`), and entry refusals. */
export const GATE_ERRORS = {
  bad_request: "gate_error_bad_request",
  token_expired: "gate_error_token_expired",
  unauthenticated: "gate_error_unauthenticated",
  not_found: "gate_error_not_found",
  unknown_lecture: "gate_error_unknown_lecture",
  unknown_purchase: "gate_error_unknown_purchase",
  not_demo: "gate_error_not_demo",
  unknown_user: "gate_error_unknown_user",
  bad_api_key: "gate_error_bad_api_key",
  payload_too_large: "gate_error_payload_too_large",
  uri_too_long: "gate_error_uri_too_long",
  rate_limited: "gate_error_rate_limited",
  store_unavailable: "gate_error_store_unavailable",
  not_purchased: "gate_error_not_purchased",
  payment_pending: "gate_error_payment_pending",
  purchase_cancelled: "gate_error_purchase_cancelled",
  corporate_account_cannot_enter: "gate_error_corporate_account_cannot_enter",
  seat_not_allocated: "gate_error_seat_not_allocated",
  profile_incomplete: "gate_error_profile_incomplete",
  nickname_taken_by_staff: "gate_error_nickname_taken_by_staff",
  doors_not_open: "gate_error_doors_not_open",
  lecture_ended: "gate_error_lecture_ended",
  lecture_cancelled: "gate_error_lecture_cancelled",
  banned: "gate_error_banned",
  not_a_company: "gate_error_not_a_company",
  not_linked: "gate_error_not_linked",
  no_seats_left: "gate_error_no_seats_left",
  not_allocated: "gate_error_not_allocated",
  unknown_company: "gate_error_unknown_company",
  integration_off: "gate_error_integration_off",
} as const satisfies Record<string, Key>;

function known<T extends Record<string, Key>>(table: T, code: string): Key | null {
  return Object.prototype.hasOwnProperty.call(table, code) ? table[code as keyof T]! : null;
}

/** A room `error`'s text; a code newer than this client gets a general sentence, never the node's. */
export function roomErrorText(code: string): string {
  const key = known(ROOM_ERRORS, code);
  return key ? t(key) : t("error_unknown", { code });
}

/** A gate refusal's text by its code (and HTTP status when the code is unknown). */
export function gateErrorText(code: string, status: number): string {
  const key = known(GATE_ERRORS, code);
  if (key) return t(key);
  if (status === 0) return t("error_network");
  if (status === 401) return t("error_signed_out");
  if (status === 429) return t("error_rate_limited");
  return t("error_unknown", { code });
}
