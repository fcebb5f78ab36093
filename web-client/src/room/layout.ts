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

/**
 * While an on-screen keyboard covers part of a phone's screen, the room is laid out in the part
 * still visible (`--visible-height`, read by styles.css), so the browser has nothing to scroll to
 * reach the chat input and the video stays at the top. Browsers that resize the layout for the
 * keyboard (`interactive-widget=resizes-content`) need none of this; the others (Safari) do. Not
 * while pinch-zoomed: the visible part is then smaller for another reason.
 */
export function useVisibleHeight(on: boolean): void {
  useEffect(() => {
    const vv = window.visualViewport;
    const root = document.documentElement;
    if (!on || !vv) return;
    const update = () => {
      const keyboard = vv.scale < 1.01 && vv.height < window.innerHeight - 1;
      if (keyboard) root.style.setProperty("--visible-height", `${Math.round(vv.height)}px`);
      else root.style.removeProperty("--visible-height");
      if (keyboard && window.scrollY !== 0) window.scrollTo(0, 0);
    };
    update();
    vv.addEventListener("resize", update);
    vv.addEventListener("scroll", update);
    return () => {
      vv.removeEventListener("resize", update);
      vv.removeEventListener("scroll", update);
      root.style.removeProperty("--visible-height");
    };
  }, [on]);
}
