// Every error code a node can answer with has its own text in Japanese and in English. The
// codes are read from where they are defined (the protocol's generated types and its document,
// the gate's Rust source), so a code added there without a text here fails this test.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GATE_ERRORS, ROOM_ERRORS, gateErrorText, roomErrorText } from "../src/errors";
import { dictionaries, setLang } from "../src/i18n";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const read = (p: string) => readFileSync(path.join(root, p), "utf8");

/** The room error codes of the generated `ErrorCode` type. */
function generatedRoomCodes(): string[] {
  const text = read("protocol/bindings/ErrorCode.ts");
  const union = /export type ErrorCode = ([^;]+);/.exec(text)?.[1] ?? "";
  return [...union.matchAll(/"([a-z_]+)"/g)].map((m) => m[1]!);
}

/** The codes of the table in docs/protocol.md, "5. Error codes". */
function documentedRoomCodes(): string[] {
  const doc = read("docs/protocol.md");
  const section = doc.slice(doc.indexOf("## 5. Error codes"), doc.indexOf("## 6."));
  return [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!);
}

/** The gate's codes: entry refusals, its API errors, and the node's other HTTP refusals. */
function gateCodes(): string[] {
  const codes = new Set<string>();
  const refusals = read("room-server/src/gate/entitlement.rs");
  for (const m of refusals.matchAll(/Refusal::\w+(?: \{ \.\. \})? => "([a-z_]+)"/g)) codes.add(m[1]!);
  const http = read("room-server/src/gate/http.rs");
  const codeFn = http.slice(http.indexOf("fn code(&self)"), http.indexOf("fn into_body_response"));
  for (const m of codeFn.matchAll(/=> "([a-z_]+)"/g)) codes.add(m[1]!);
  for (const file of ["gate/learner.rs", "gate/corporate.rs", "gate/integration.rs", "gate/mod.rs", "gate/http.rs", "web.rs"]) {
    const text = read(`room-server/src/${file}`);
    for (const m of text.matchAll(/(?:NotFound|Forbidden|Conflict)\(\s*"([a-z_]+)"/g)) codes.add(m[1]!);
    for (const m of text.matchAll(/refuse\(\s*StatusCode::\w+,\s*"([a-z_]+)"/g)) codes.add(m[1]!);
  }
  return [...codes];
}

describe("error codes", () => {
  it("finds the codes where they are defined", () => {
    expect(generatedRoomCodes()).toContain("seat_taken");
    expect(generatedRoomCodes().length).toBeGreaterThanOrEqual(16);
    expect(gateCodes()).toEqual(expect.arrayContaining(["seat_not_allocated", "token_expired", "rate_limited"]));
  });

  it("the document and the generated type list the same room codes", () => {
    expect(documentedRoomCodes().sort()).toEqual(generatedRoomCodes().sort());
  });

  it("every room error code has its own text in both languages", () => {
    for (const code of generatedRoomCodes()) {
      const key = (ROOM_ERRORS as Record<string, string>)[code];
      expect(key, code).toBe(`room_error_${code}`);
      for (const lang of ["ja", "en"] as const) expect((dictionaries[lang] as Record<string, string>)[key!], `${lang} ${code}`).toBeTruthy();
    }
  });

  it("every gate error code has its own text in both languages", () => {
    for (const code of gateCodes()) {
      const key = (GATE_ERRORS as Record<string, string>)[code];
      expect(key, code).toBe(`gate_error_${code}`);
      for (const lang of ["ja", "en"] as const) expect((dictionaries[lang] as Record<string, string>)[key!], `${lang} ${code}`).toBeTruthy();
    }
  });

  it("a Japanese reader never gets the node's English sentence", () => {
    setLang("ja");
    expect(roomErrorText("not_found")).toBe(dictionaries.ja.room_error_not_found);
    expect(roomErrorText("brand_new_code")).toContain("brand_new_code");
    expect(roomErrorText("brand_new_code")).toMatch(/[ぁ-んァ-ン一-龯]/);
    expect(gateErrorText("seat_not_allocated", 403)).toBe(dictionaries.ja.gate_error_seat_not_allocated);
    expect(gateErrorText("http_502", 502)).toMatch(/[ぁ-んァ-ン一-龯]/);
    setLang("en");
    expect(roomErrorText("seat_taken")).toBe(dictionaries.en.room_error_seat_taken);
    setLang("ja");
  });
});
