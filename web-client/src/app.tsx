import { useEffect, useState } from "preact/hooks";
import { clearToken, onTokenChange, token } from "./auth";
import { type Lang, lang, onLangChange, setLang, t } from "./i18n";
import { ArchivePage } from "./pages/archive";
import { CheckPage } from "./pages/check";
import { LecturesPage } from "./pages/lectures";
import { SignInPage } from "./pages/signin";
import { RoomPage } from "./room/page";
import { navigate, onLinkClick, useRoute } from "./router";

function useLang(): Lang {
  const [l, setL] = useState(lang());
  useEffect(() => onLangChange(() => setL(lang())), []);
  return l;
}

export function App() {
  const current = useLang();
  const route = useRoute();
  // Another tab signing in or out changes this one too (one sign-in per browser).
  const [, setSignIns] = useState(0);
  useEffect(() => onTokenChange(() => setSignIns((n) => n + 1)), []);
  const signedIn = token() !== null;
  useEffect(() => {
    document.title = t("app_title");
  }, [current]);
  return (
    <div class="app">
      <a class="skip" href="#main">
        {t("skip_to_main")}
      </a>
      <header class="topbar">
        <a class="brand" href="/lectures" onClick={onLinkClick("/lectures")}>
          {t("app_title")}
        </a>
        <nav aria-label={t("app_title")}>
          <a href="/lectures" onClick={onLinkClick("/lectures")} aria-current={route.page === "lectures" ? "page" : undefined}>
            {t("nav_lectures")}
          </a>
          <a href="/check" onClick={onLinkClick("/check")} aria-current={route.page === "check" ? "page" : undefined}>
            {t("nav_check")}
          </a>
        </nav>
        <div class="topbar-end">
          <label class="lang">
            <span class="visually-hidden">{t("language")}</span>
            <select
              value={current}
              aria-label={t("language")}
              onChange={(e) => setLang((e.currentTarget as HTMLSelectElement).value as Lang)}
            >
              <option value="ja">{t("lang_ja")}</option>
              <option value="en">{t("lang_en")}</option>
            </select>
          </label>
          {signedIn && (
            <button
              type="button"
              class="link"
              onClick={() => {
                clearToken();
                navigate("/sign-in");
              }}
            >
              {t("sign_out")}
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {route.page === "sign-in" && <SignInPage />}
        {route.page === "lectures" && <LecturesPage />}
        {route.page === "room" && <RoomPage lecture={route.lecture} />}
        {route.page === "archive" && <ArchivePage lecture={route.lecture} />}
        {route.page === "check" && <CheckPage />}
        {route.page === "not-found" && (
          <section class="page">
            <h1>404</h1>
            <p>
              <a href="/lectures" onClick={onLinkClick("/lectures")}>
                {t("back_to_lectures")}
              </a>
            </p>
          </section>
        )}
      </main>
    </div>
  );
}
