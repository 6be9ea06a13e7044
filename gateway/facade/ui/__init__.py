"""The admin web UI at ``/ui/``: server-rendered pages (Quart's Jinja templates, package
data beside this module) over the admin API, called through the facade's own client of
the core with the signed-in admin's key. Every asset comes from the gateway itself;
nothing is built at install time (docs/ui.md).

Example::

    app.register_blueprint(ui_blueprint(core, proxies, session_idle=8 * 3600))
"""

from gateway.facade.ui.site import ui_blueprint

__all__ = ["ui_blueprint"]
