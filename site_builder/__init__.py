"""The static study site: Jinja2 templates rendered from the Corpus into `site/`."""

from site_builder.emitter import SiteEmitter

__all__ = ["SiteEmitter"]
