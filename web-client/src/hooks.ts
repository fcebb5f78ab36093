import { useEffect, useState } from "preact/hooks";

/** The local clock, refreshed every `everyMs` (countdowns, fading reactions). */
export function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(id);
  }, [everyMs]);
  return now;
}
