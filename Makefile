# replica-tls developer and SAM build targets.
# The two commands a new user needs: `make demo` (the main job on local defaults) and `make test`.

GO        ?= go
ARCH      ?= arm64
BIN       := $(CURDIR)/bin
GOBUILD   := CGO_ENABLED=0 GOOS=linux $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'
PKGS      := ./...

# Lambda functions: SAM logical id -> source folder.
FUNCTIONS := ReplicaCreatedFunction:replica-created ClusterRegisteredFunction:cluster-registered \
             CertRotationFunction:cert-rotation SecretChangedFunction:secret-changed \
             SweepFunction:sweep

.PHONY: all test test-short lint build demo sim invoke bench bench-sweep bench-rotation bench-init fuzz cfn-lint clean help

all: lint test

help:
	@echo "make demo   - run the main job locally: simulator + moto_server + the real Lambda under the RIE"
	@echo "make test   - every test that can run on this machine (unit, integration, end to end, cfn-lint)"
	@echo "make lint   - gofmt check, go vet, staticcheck"
	@echo "make build  - build every Lambda bootstrap for linux/$(ARCH) into bin/functions/"
	@echo "make sim    - start the cluster simulator on local defaults and print its endpoints"
	@echo "make invoke FN=<LogicalId> EVENT=events/<file>  - run one function on an event, docker-free"
	@echo "make bench  - benchmarks (make bench-sweep: the 1,000-database sweep; make bench-rotation: proxy window)"
	@echo "make bench-init - INIT of every function under the RIE against a minimal SDK bootstrap, and sizes"

test: cfn-lint
	$(GO) test -count=1 -timeout 20m $(PKGS)

# Quick loop for developers: skips the slow end-to-end packages.
test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

cfn-lint:
	@command -v cfn-lint >/dev/null || { echo "cfn-lint missing: pip install cfn-lint" >&2; exit 1; }
	cfn-lint template.yaml

build:
	@for f in $(FUNCTIONS); do \
	  dir=$${f#*:}; \
	  echo "build functions/$$dir (linux/$(ARCH))"; \
	  GOARCH=$(ARCH) $(GOBUILD) -o $(BIN)/functions/$$dir/bootstrap ./functions/$$dir || exit 1; \
	done

# SAM BuildMethod: makefile calls build-<LogicalId> with ARTIFACTS_DIR set.
build-ReplicaCreatedFunction:
	GOARCH=$(ARCH) $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/replica-created

build-ClusterRegisteredFunction:
	GOARCH=$(ARCH) $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/cluster-registered

build-CertRotationFunction:
	GOARCH=$(ARCH) $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/cert-rotation

build-SecretChangedFunction:
	GOARCH=$(ARCH) $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/secret-changed

build-SweepFunction:
	GOARCH=$(ARCH) $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sweep

sim:
	$(GO) run ./infra/cmd/cluster-sim

invoke:
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<LogicalId> EVENT=events/<file>.json" >&2; exit 2; }
	$(GO) run ./infra/cmd/localrun invoke -fn $(FN) -event $(EVENT)

demo:
	$(GO) run ./infra/cmd/localrun demo

# Every benchmark but the fleet-scale sweep (about 3 minutes on its own: make bench-sweep).
bench:
	$(GO) test -run='^$$' -bench=. -skip='^BenchmarkSweep1000$$' -benchmem $(PKGS)

# 1,000 databases, 500 links, 10 simulated clusters, 20 ms per API call.
bench-sweep:
	$(GO) test -run='^$$' -bench=Sweep1000 -benchtime=1x -timeout=30m ./shared/sweep/

# How long a proxy rotation leaves new replication connections failing.
bench-rotation:
	$(GO) test -run='^$$' -bench=ProxyRotationWindow -benchtime=3x ./shared/rotation/

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=20s ./shared/certs/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeDBUpdate -fuzztime=20s -fuzzminimizetime=1s ./infra/simulator/

clean:
	rm -rf $(BIN) .aws-sam .local

# INIT of every function vs a minimal bootstrap with the same AWS clients (the floor), in one run.
bench-init:
	$(GO) test -run '^$$' -bench '^BenchmarkInit$$' -benchtime 1x -count 1 ./infra/lambdarun/
