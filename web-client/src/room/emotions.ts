// A picture for each of the default emotion keys; a lecture's own keys show their label only.
const ICONS: Record<string, string> = {
  good: "👍",
  i_see: "💡",
  lost: "❓",
  applause: "👏",
  slower: "🐢",
};

export function emotionIcon(key: string): string {
  return ICONS[key] ?? "●";
}
