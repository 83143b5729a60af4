"""The web page: Gradio Blocks whose callbacks are thin wrappers over the service the CLI and API use.

``app.build_ui`` lays the page out: a header with the language switch, then one tab per way in
(``tabs/single.py``, ``batch.py``, ``microphone.py``, ``history.py``, ``system.py``), each a ``create_<tab>(ctx)``
that draws the tab, wires its events to a callbacks class (plain methods, callable from tests) and returns its
components. ``dictation.py`` runs the live-dictation sessions and their worker threads; ``components.py`` holds
the widgets and result views the tabs share, ``format.py`` the text formatting, ``assets.py`` the CSS and scripts.

Each callback parses the inputs, calls the service, and formats the outputs in the page's language (``lang``: "zh"
or "en", sent by the language switch with every request). User text (transcripts, file names) only reaches
components that escape it (Textbox, Dataframe); Markdown built here escapes it first (``format.esc``).
"""
