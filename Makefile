# The two commands a newcomer runs: `make demo` and `make test`.
# Both create .venv themselves; nothing else needs to be installed by hand
# (nginx and wrk are optional: tests that need them skip with a reason).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SURGE  := $(VENV)/bin/surge
DEMO_PORT ?= 18080

.PHONY: venv build demo test bench annotate debug-build clean ssl-headers import-link image

# The core links libssl: without its headers the compiler would fail deep in a
# Cython build, so say up front which package is missing, in one line, and stop.
# $(error) is expanded only when this recipe runs, so `make clean` works without them.
ssl-headers:
	$(if $(shell command -v $(firstword $(CC)) 2>/dev/null),,$(error C compiler $(CC) missing: install gcc (Debian/Ubuntu: apt-get install build-essential)))
	$(if $(shell echo '#include <openssl/ssl.h>' | $(CC) -E - >/dev/null 2>&1 && echo found),,$(error libssl headers missing: install libssl-dev (Debian/Ubuntu: apt-get install libssl-dev)))
	$(if $(shell printf '#include <openssl/opensslv.h>\n#if OPENSSL_VERSION_NUMBER < 0x30000000L\n#error old\n#endif\n' | $(CC) -E - >/dev/null 2>&1 && echo found),,$(error OpenSSL 3.0 or newer needed (the core uses its kTLS and group-name calls): install a newer libssl-dev))
	@:

$(VENV)/.installed: pyproject.toml setup.py | ssl-headers
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "cython>=3.0" "setuptools>=68" wheel
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Rebuild the Cython extensions in place (fast when nothing changed), and
# byte-compile src/: an editable install is never byte-compiled by pip, and
# with PYTHONDONTWRITEBYTECODE set (as on this project's machines) every run
# would otherwise compile ~60 modules from source (~0.03-0.05 s of CPU per
# run, counted in the client's cost per request of a short benchmark run).
build: ssl-headers $(VENV)/.installed
	$(PY) setup.py -q build_ext --inplace
	$(PY) -m compileall -q src
	@$(MAKE) -s import-link

# `import surge` as a plain directory in site-packages: a symlink to src/ (the
# package lives in src/, not in a surge/ folder).  pip's editable install does
# the same job with an import hook (setuptools' __editable__ finder) that every
# Python start runs from site.py, importing pathlib, fnmatch and importlib.util
# for it: ~5-8 ms of CPU each time `surge` starts, counted in the client's CPU
# per request of a short benchmark run.  The install's metadata (dist-info,
# the `surge` script, the dependencies) stays pip's.  Run after every install,
# which writes the hook again.
import-link: $(VENV)/.installed
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	if [ -e "$$site/surge" ] && [ ! -L "$$site/surge" ]; then \
		echo "$$site/surge is not a link to src/: leaving the editable install's hook in place"; \
	else \
		ln -sfn "$(CURDIR)/src" "$$site/surge" && \
		rm -f "$$site"/__editable__.surge-*.pth "$$site"/__editable___surge_*_finder.py; \
	fi

# Start the embedded target, run a 10-second max-RPS test against it, print the report.
demo: build
	$(PY) bench/demo.py --port $(DEMO_PORT)

# Three test processes: most tests spend their time waiting on a timed run or a
# server, so on 2 cores the suite takes about half as long as one process
# (10 min -> under 5).  TEST_WORKERS=0 runs it in this process, one test at a time.
TEST_WORKERS ?= 3
test: build
	$(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS)) tests

# surge vs wrk against nginx, same run, alternating rounds (plain HTTP, then over TLS:
# its own section of RESULTS.md); the open model's cost and
# accuracy; live progress overhead; one real compare pair.  Each writes its table
# into bench/RESULTS.md.
bench: build
	$(PY) -m pytest -q bench/micro --benchmark-only --benchmark-columns=min,median,mean,ops
	$(PY) bench/versus_wrk.py --scenarios default,pipeline,c10k --rounds 5
	$(PY) bench/versus_wrk.py --scenarios tls,tls-pipeline,tls-close,tls-ktls,tls-c10k --rounds 5
	$(PY) bench/open_model.py
	$(PY) bench/progress_overhead.py
	$(PY) bench/compare_pair.py
	$(PY) bench/flow_cost.py

# The container image `surge k8s` runs (deploy/Dockerfile), with docker or podman,
# whichever is there; tagged surge:<version>, the manifests' default image.
IMAGE ?= surge:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CONTAINER_TOOL ?= $(firstword $(foreach tool,docker podman,$(if $(shell command -v $(tool) 2>/dev/null),$(tool))))
image:
	$(if $(CONTAINER_TOOL),,$(error neither docker nor podman found: install one to build the image))
	$(CONTAINER_TOOL) build -f deploy/Dockerfile -t $(IMAGE) .
	@echo "built $(IMAGE); load it into the cluster (kind load docker-image $(IMAGE)) or push it and give surge k8s --image"

# Cython's annotated HTML for the hot path: src/core/*.html
annotate: $(VENV)/.installed
	SURGE_ANNOTATE=1 $(PY) setup.py -q build_ext --inplace --force
	@ls src/core/*.html src/serve/*.html

# Line-traced build for profilers/coverage (slow; rebuild with `make build` after).
debug-build: $(VENV)/.installed
	SURGE_TRACE=1 $(PY) setup.py -q build_ext --inplace --force

clean:
	rm -rf build src/core/*.c src/core/*.so src/serve/*.c src/serve/*.so src/core/*.html src/serve/*.html
