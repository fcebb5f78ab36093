// The room is open in another tab of this browser (or the same person connected from another
// device): this tab let go of it and waits. It never takes the room back by itself, so two
// tabs never close each other in turn; "continue here" does, and the other tab waits instead.
import { useEffect, useRef } from "preact/hooks";
import { t } from "../i18n";
import { onLinkClick } from "../router";

export function Elsewhere({ onContinue }: { onContinue: () => void }) {
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => button.current?.focus(), []);
  return (
    <section class="page narrow elsewhere" aria-labelledby="elsewhere-title" data-testid="elsewhere">
      <h1 id="elsewhere-title">{t("other_tab_title")}</h1>
      <p>{t("other_tab_help")}</p>
      <p class="row">
        <button type="button" class="primary" ref={button} onClick={onContinue}>
          {t("continue_here")}
        </button>
        <a class="button" href="/lectures" onClick={onLinkClick("/lectures")}>
          {t("back_to_lectures")}
        </a>
      </p>
    </section>
  );
}
