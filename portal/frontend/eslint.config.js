// ESLint for the portal's browser code (portal/static/*.js), run by `make check` from the
// repository root: `npm --prefix portal/frontend run lint`. The files are native ES modules
// the browser loads as they are (no bundler), so they are linted as modules with the
// browser's globals and nothing else: a stray global, a typo'd name or an unused import fails.
import js from "@eslint/js";
import globals from "globals";

const FILES = ["portal/static/**/*.js"];

export default [
  {...js.configs.recommended, files: FILES},
  {
    files: FILES,
    languageOptions: {ecmaVersion: "latest", sourceType: "module", globals: globals.browser},
    linterOptions: {reportUnusedDisableDirectives: "error"},
    rules: {
      // Modules are strict and block-scoped names are what the code means.
      "no-var": "error",
      "prefer-const": "error",
      eqeqeq: ["error", "always", {null: "ignore"}],
    },
  },
];
