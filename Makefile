# FaceAccess: `make run` brings the whole system up on http://127.0.0.1:8000, `make test` runs the tests.
# Both create .venv and install the project the first time (and again when pyproject.toml changes).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.faceaccess-installed
PYTEST_ARGS ?=

.PHONY: run test lint install weights chromium iproute2 axe test-tools clean-venv

run: weights
	$(PY) -m faceaccess.runner

test: weights chromium iproute2 axe test-tools
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .

install: $(STAMP)

weights: install
	$(PY) -m recognition.engine fetch-weights $$( [ -d ../shared/models/minifasnet ] && echo --from ../shared/models/minifasnet )

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
# Installed here when we may (root + apt-get); otherwise say how: the tests then skip, or fail under CI=true.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium with apt-get (for the browser tests)"; \
	    (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)) || \
	    echo "apt-get could not install chromium: the browser tests will say so"; \
	  else \
	    echo "the browser tests need Chromium: sudo apt-get install chromium"; \
	  fi; }

# The two-host test (tests/service/test_remote_worker_netns.py) makes network namespaces with `ip netns`.
iproute2:
	@command -v ip >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing iproute2 with apt-get (for the two-host test)"; \
	    (apt-get install -y -qq iproute2 >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null)) || \
	    echo "apt-get could not install iproute2: the two-host test will say so"; \
	  else \
	    echo "the two-host test needs root and iproute2 (ip netns): it will be skipped"; \
	  fi; }

# axe-core (accessibility rules) from the npm registry, for the browser tests that inject it into console pages.
# Pinned; kept under var/ (not committed). Without npm the accessibility test skips (fails under CI=true).
AXE_VERSION := 4.14.1
AXE := var/npm/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE):
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq npm >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null)) || true; \
	  fi; }
	@mkdir -p var/npm
	@npm install --prefix var/npm --no-save --no-audit --no-fund --silent axe-core@$(AXE_VERSION) || \
	  echo "npm could not install axe-core: the accessibility test will say so"


# The camera bridge and MQTT tests use real servers from Debian (issue 21): mosquitto (an MQTT broker), ffmpeg (to
# make an H.264 clip) and GStreamer's RTSP server (to serve it). Installed like Chromium; missing, those tests skip.
TEST_TOOLS := mosquitto ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
test-tools:
	@{ command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null 2>&1 && command -v ffmpeg >/dev/null 2>&1 && \
	  /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(TEST_TOOLS) with apt-get (for the camera bridge and MQTT tests)"; \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_TOOLS) >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_TOOLS) >/dev/null)) || \
	    echo "apt-get could not install them: the bridge and MQTT tests will say so"; \
	  else \
	    echo "the bridge and MQTT tests need: sudo apt-get install $(TEST_TOOLS)"; \
	  fi; }

# Debian/Ubuntu ship venv support separately (python3-venv); install it when we may, else say how.
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "FaceAccess needs Python 3.11 or newer")'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3-venv with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && \
	    $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "'$(PYTHON) -m venv' failed: on Debian/Ubuntu run  sudo apt-get install python3-venv  and retry"; exit 1; \
	  fi; }

# The stamp makes a second `make run` skip pip entirely; touching pyproject.toml reinstalls.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

clean-venv:
	rm -rf $(VENV)
