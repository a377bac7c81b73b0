# Operator make targets (PRODUCT.md section 3): thin wrappers over the `kestrel` CLI.
#
#   make demo                      embedded simulator + bot + status line (Ctrl-C stops)
#   make demo duration=30          ... stopping by itself after 30 s
#   make test                      every check CI runs (scripts/test)
#   make status | halt | resume | cancel-all | restart-ws
#   make fallback-rest             force market data onto REST polling
#   make fallback-rest off=1       back to automatic (WebSocket when healthy)
#   make bench                     end-to-end benchmark, seed scenario, then the perf gate vs
#                                  bench/baseline.json (what CI runs; see bench/README.md)
#   make bench scenario=wide       another scenario (seed, burst, wide, stress); duration=SECS
#                                  warmup=SECS override the scenario's; the gate runs for seed only
#
# The admin targets talk to the running bot at $(admin) (default http://127.0.0.1:9184); a
# non-loopback bot needs KESTREL_ADMIN_TOKEN in the environment. Add json=1 for raw JSON.

CARGO   ?= cargo
admin   ?= http://127.0.0.1:9184
KESTREL ?= $(CARGO) run --release --quiet --
JSONFLAG := $(if $(json),--json,)
ADMIN   := --admin $(admin) $(JSONFLAG)

.PHONY: demo test status halt resume cancel-all restart-ws fallback-rest bench

demo:
	$(KESTREL) demo $(if $(duration),--duration $(duration),)

test:
	scripts/test

status:
	$(KESTREL) status $(ADMIN)

halt:
	$(KESTREL) halt $(ADMIN)

resume:
	$(KESTREL) resume $(ADMIN)

cancel-all:
	$(KESTREL) cancel-all $(ADMIN)

restart-ws:
	$(KESTREL) restart-ws $(ADMIN)

fallback-rest:
	$(KESTREL) fallback-rest $(if $(off),off,on) $(ADMIN)

scenario ?= seed
BENCH_OUT = target/bench/$(scenario)

bench:
	$(KESTREL) bench run --scenario bench/$(scenario).toml \
		$(if $(duration),--duration $(duration),) $(if $(warmup),--warmup $(warmup),) \
		--out $(BENCH_OUT).json --markdown $(BENCH_OUT).md
	$(if $(filter seed,$(scenario)),$(KESTREL) bench assert --report $(BENCH_OUT).json \
		--baseline bench/baseline.json --markdown $(BENCH_OUT)-gate.md,)
