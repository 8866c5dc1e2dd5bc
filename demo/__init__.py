"""The Gradio UI of pixelar: one module per tab (``build_*_tab``), a thin adapter to the core (``models``, ``data``)
and what the tabs share (``common``). No tensor math here: pictures and numbers come from ``pixelar``."""
