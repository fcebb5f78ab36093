// "You are called on": a learner must not miss it, wherever the page is scrolled, whichever tab
// is in front, and whether or not the call reached them live (a call made while they were away
// comes with the welcome after the resume). So: a toast fixed on screen (role="alert"), the
// chime, a vibration on phones, and the tab's title, put back once the call is over.
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../i18n";
import { chime } from "./sound";

/** The vibration pattern of a call: two short pulses, like the chime's two tones. */
export const CALL_VIBRATION = [200, 100, 200];

/** Vibrates where the browser can (phones); true if it did. */
export function vibrate(nav: Pick<Navigator, "vibrate"> | undefined = globalThis.navigator): boolean {
  try {
    return typeof nav?.vibrate === "function" ? nav.vibrate(CALL_VIBRATION) : false;
  } catch {
    // Some browsers throw without a user gesture: the toast and the chime remain.
    return false;
  }
}

/** The tab's title while called on: a sign first, so it shows in a crowded tab strip. */
export function calledTitle(title: string): string {
  return `🎤 ${t("called_on_title")} — ${title}`;
}

export function CallAlert({ call, onDismiss }: { call: { by: string; at: number } | null; onDismiss: () => void }) {
  const [sound, setSound] = useState<"pending" | "played" | "blocked">("pending");
  const alerted = useRef<number | null>(null);

  // Once per call: the chime and a vibration.
  useEffect(() => {
    if (!call || alerted.current === call.at) return;
    alerted.current = call.at;
    setSound("pending");
    vibrate();
    let live = true;
    void chime().then((played) => {
      if (live) setSound(played ? "played" : "blocked");
    });
    return () => {
      live = false;
    };
  }, [call?.at]);

  // The tab's title says so while the call stands, and is put back after.
  useEffect(() => {
    if (!call) return;
    const before = document.title;
    document.title = calledTitle(before);
    return () => {
      if (document.title === calledTitle(before)) document.title = before;
    };
  }, [call?.at]);

  if (!call) return null;
  return (
    <div class="called-on call-toast" role="alert" data-sound={sound} data-call-at={call.at}>
      <span aria-hidden="true">🎤</span> <span class="call-text">{t("called_on_you", { by: call.by })}</span>
      {sound === "blocked" && <span class="help">{t("sound_blocked")}</span>}
      <button type="button" onClick={onDismiss}>
        {t("dismiss")}
      </button>
    </div>
  );
}
