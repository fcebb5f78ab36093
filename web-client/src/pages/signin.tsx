import type { DemoPerson } from "@gate/DemoPerson";
import type { SignInOptions } from "@gate/SignInOptions";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { beginPortalSignIn, handOffRefused, setToken } from "../auth";
import { t } from "../i18n";
import { navigate } from "../router";

export function SignInPage() {
  const [options, setOptions] = useState<SignInOptions | null>(null);
  const [people, setPeople] = useState<DemoPerson[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .signInOptions()
      .then(async (o) => {
        setOptions(o);
        if (o.demo) setPeople((await api.demoUsers()).users);
      })
      .catch((e: unknown) => setError(e instanceof ApiError ? e.localized() : String(e)));
  }, []);

  const signIn = async (id: string) => {
    setError(null);
    try {
      const r = await api.demoSignIn(id);
      setToken(r.token);
      navigate("/lectures");
    } catch (e) {
      setError(t("signin_failed", { message: e instanceof ApiError ? e.localized() : String(e) }));
    }
  };

  const portal = options?.portal_sign_in_url ?? null;
  const throughPortal = (url: string) => {
    // The portal sends the person back to My page with the token and this state.
    window.location.assign(beginPortalSignIn(url, `${window.location.origin}/lectures`));
  };

  return (
    <section class="page narrow" aria-labelledby="signin-title">
      <h1 id="signin-title">{t("signin_title")}</h1>
      {handOffRefused() && (
        <p class="error" role="alert" data-testid="handoff-refused">
          {t("signin_handoff_refused")}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {options === null && !error && <p>{t("loading")}</p>}
      {portal && (
        <p>
          <button type="button" class="primary" data-testid="portal-sign-in" onClick={() => throughPortal(portal)}>
            {t("signin_portal")}
          </button>
        </p>
      )}
      {options && !options.demo && !portal && <p>{t("signin_portal_only")}</p>}
      {people && (
        <>
          <p>{t("signin_intro")}</p>
          <ul class="people">
            {people.map((p) => (
              <li key={p.id}>
                <button type="button" class="person" data-user={p.id} onClick={() => void signIn(p.id)}>
                  <span class="person-id">{p.id}</span>
                  <span class="person-about">{p.about}</span>
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
