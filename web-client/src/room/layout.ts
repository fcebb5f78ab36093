// Which layout the room uses: a phone (narrow screen: the video fixed at the top, tabs below) or
// a larger screen; and whether to speak of tapping or clicking.
import { useEffect, useState } from "preact/hooks";

/** The widest screen laid out as a phone, in CSS pixels (styles.css uses the same width). */
export const PHONE_MAX_WIDTH = 600;

function matches(query: string): boolean {
  return typeof window !== "undefined" && typeof window.matchMedia === "function" && window.matchMedia(query).matches;
}

export function useMediaQuery(query: string): boolean {
  const [on, setOn] = useState(() => matches(query));
  useEffect(() => {
    if (typeof window.matchMedia !== "function") return;
    const list = window.matchMedia(query);
    const changed = () => setOn(list.matches);
    changed();
    list.addEventListener("change", changed);
    return () => list.removeEventListener("change", changed);
  }, [query]);
  return on;
}

/** A phone-sized screen. */
export function usePhone(): boolean {
  return useMediaQuery(`(max-width: ${PHONE_MAX_WIDTH}px)`);
}

/** Whether the words should be for touch ("tap") rather than a mouse ("click"). */
export function useTouchWords(): boolean {
  const coarse = useMediaQuery("(pointer: coarse)");
  const phone = usePhone();
  return coarse || phone;
}
