import { render } from "preact";
import { App } from "./app";
import { adoptFragmentToken } from "./auth";
import { lang } from "./i18n";
import "./styles.css";

// A token that does not answer this tab's own sign-in is dropped; the sign-in page says why.
if (adoptFragmentToken() === "refused") history.replaceState(null, "", "/sign-in");
document.documentElement.lang = lang();
render(<App />, document.getElementById("app")!);
