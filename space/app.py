"""The Hugging Face Space: the deepfake-lessons web demo (helpers.web_app) serving one model folder.

Which model (README.md tells how to deploy):
- $DEEPFAKE_MODEL_REPO, when set: a Hugging Face model repo ("owner/name", or "owner/name@revision"
  to pin a commit) holding a saved model folder, downloaded at start-up;
- else the folder $DEEPFAKE_MODEL_DIR, by default model/ beside this file, committed with Git LFS.
Flags go to $DEEPFAKE_FLAG_DIR (default data/flagged; a Space's disk is wiped on restart unless it
has persistent storage).

In the Space, helpers/ (a copy of the repository's src/helpers) sits beside this file; in the
repository, `pip install -e ".[app]"` makes it importable, and `python space/app.py` runs the same app.
"""
import sys

from helpers import web_app
from helpers.errors import UserError

try:
    demo = web_app.build_app(web_app.model_dir_from_env())
except UserError as err:  # no model, a failed download, a damaged model folder: one line, not a traceback
    sys.exit(f"error: {err}")

if __name__ == "__main__":
    web_app.serve(demo)  # the address and port the Space sets ($GRADIO_SERVER_NAME, $GRADIO_SERVER_PORT)
