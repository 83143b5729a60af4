"""Start the web page and API: `python app.py [--host H] [--port P] [--device ...] [--engine ...] ...`."""

import sys

from funasr_webui.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
