"""MySpinBot's server: `python app.py` (the same as `myspinbot serve`)."""

from myspinbot.app import create_app
from myspinbot.server import serve

app = create_app()

if __name__ == "__main__":
    serve(app)
