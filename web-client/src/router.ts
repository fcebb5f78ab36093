// A small router over the History API: the server answers every page path with index.html.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { page: "sign-in" }
  | { page: "lectures" }
  | { page: "room"; lecture: string }
  | { page: "archive"; lecture: string }
  | { page: "check" }
  | { page: "not-found" };

export function parseRoute(path: string): Route {
  if (path === "/" || path === "/lectures") return { page: "lectures" };
  if (path === "/sign-in") return { page: "sign-in" };
  if (path === "/check") return { page: "check" };
  const room = /^\/(room|archive)\/([^/]+)$/.exec(path);
  if (room?.[2]) {
    try {
      const page = room[1] === "archive" ? "archive" : "room";
      return { page, lecture: decodeURIComponent(room[2]) };
    } catch {
      return { page: "not-found" };
    }
  }
  return { page: "not-found" };
}

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  history.pushState(null, "", path);
  for (const l of listeners) l();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.pathname));
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return route;
}

/** An in-app link: navigates without reloading. */
export function onLinkClick(path: string) {
  return (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(path);
  };
}
