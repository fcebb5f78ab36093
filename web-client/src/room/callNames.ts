// Nickname suggestions for the console's call box: the names the console knows (staff get every
// occupant's), those starting with what was typed first, then those containing it, each group in
// the order of the seats. Matching ignores case and the width of kana and letters (NFKC).
import type { SeatIndex } from "./state";

/** Most suggestions offered at once. */
export const SUGGEST_MAX = 8;

export interface Suggestion {
  nickname: string;
  seat: SeatIndex;
}

function fold(s: string): string {
  return s.normalize("NFKC").toLowerCase();
}

export function suggestNicknames(names: Map<SeatIndex, string>, typed: string, max = SUGGEST_MAX): Suggestion[] {
  const q = fold(typed.trim());
  if (q === "") return [];
  const starts: Suggestion[] = [];
  const contains: Suggestion[] = [];
  const seats = [...names.keys()].sort((a, b) => a - b);
  for (const seat of seats) {
    const nickname = names.get(seat)!; // `seats` are the map's own keys.
    const f = fold(nickname);
    if (f.startsWith(q)) starts.push({ nickname, seat });
    else if (f.includes(q)) contains.push({ nickname, seat });
    if (starts.length >= max) break;
  }
  return [...starts, ...contains].slice(0, max);
}
