"""The web app (``imposter app``): a Gradio page whose handlers call the library, nothing more.

``layout`` builds the page, ``handlers`` turns its inputs into library calls and library errors into
one-line page errors, ``cli`` registers the subcommand.
"""
