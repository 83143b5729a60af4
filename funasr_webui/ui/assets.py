"""What the page carries besides its components: fonts and theme, CSS, and the scripts of the language switch."""

from __future__ import annotations

import gradio as gr

LANG_STORAGE_KEY = "funasr-webui-lang"
REDRAW_MARK = "redraw"  # sent by the page's script after it changed Gradio's locale

# System fonts only: the page must not fetch web fonts (air-gapped servers). CJK fonts first for Chinese text.
SYSTEM_FONTS = [
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "Helvetica Neue",
    "Arial",
    "sans-serif",
]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono CJK SC", "monospace"]

CSS = """
#app-header { align-items: center; }
#app-title h1 { margin: 0 0 2px 0; font-size: 1.55rem; }
#app-title p { margin: 0; color: var(--body-text-color-subdued); }
#lang-switch { max-width: 230px; min-width: 200px; }
#engine-line p { margin: 0; }
#engine-notice { border-left: 4px solid #d97706; background: #fffbeb; padding: 8px 14px; border-radius: 6px; }
.dark #engine-notice { background: #3b2f12; }
#engine-notice p { margin: 2px 0; }
.hint p, .hint { font-size: var(--text-sm); color: var(--body-text-color-subdued); margin: 0; }
.status p { margin: 0; }
.table-wrap :is(table, th, td, .cell-wrap) { font-family: var(--font); }  /* Gradio's default: monospace */
.confirm-row { border: 1px solid #dc2626; border-radius: 8px; padding: 6px 10px; align-items: center; }
.tag-badge { display: inline-block; padding: 0 8px; margin: 0 4px 2px 0; border-radius: 10px; font-size: var(--text-sm);
             background: var(--neutral-100); border: 1px solid var(--neutral-200); }
.dark .tag-badge { background: var(--neutral-800); border-color: var(--neutral-700); }
"""

# Switching the browser-side language: Gradio's own locale switch (the one its Settings panel uses), reached
# through the already-loaded core module, so labels change at once without a reload. The choice is kept in
# localStorage; without one the page follows the browser's language.
_LOCALE_JS = """
const KEY = "__KEY__";
const REDRAW = "__REDRAW__";
async function setLocale(lang) {
  const locale = lang === "zh" ? "zh-CN" : "en";
  try {
    const urls = performance.getEntriesByType("resource").map((e) => e.name);
    document.querySelectorAll("link[rel=modulepreload], script[src]").forEach((el) => urls.push(el.href || el.src));
    const url = urls.find((u) => /\\/assets\\/core-[\\w-]+\\.js$/.test(u || ""));
    if (url) {
      const core = await import(url);
      await core.changeLocale(locale);
    }
  } catch (err) {
    console.warn("language switch failed", err);
  }
}
const isZh = (s) => (s || "").toLowerCase().startsWith("zh");
""".replace("__KEY__", LANG_STORAGE_KEY).replace("__REDRAW__", REDRAW_MARK)

# Page load: the stored choice (or the browser's language) becomes the language input; REDRAW_MARK in the last
# input when Gradio's locale had to change.
LOAD_JS = (
    "async (...args) => {"
    + _LOCALE_JS
    + """
  const stored = localStorage.getItem(KEY);
  const lang = stored === "zh" || stored === "en" ? stored : (isZh(navigator.language) ? "zh" : "en");
  args[0] = lang;
  if (isZh(document.documentElement.lang) !== (lang === "zh")) {
    await setLocale(lang);
    args[args.length - 1] = REDRAW;
  }
  return args;
}"""
)

# The language switch: keep the choice, change Gradio's locale, mark the request so the upload boxes are redrawn.
SWITCH_JS = (
    "async (...args) => {"
    + _LOCALE_JS
    + """
  localStorage.setItem(KEY, args[0]);
  await setLocale(args[0]);
  args[args.length - 1] = REDRAW;
  return args;
}"""
)


def page_theme() -> gr.themes.Base:
    return gr.themes.Default(primary_hue="blue", font=SYSTEM_FONTS, font_mono=MONO_FONTS)
