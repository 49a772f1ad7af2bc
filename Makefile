# sluice build. Bootstrap-style: BPF objects and skeletons in .output/,
# binaries in build/. `make help` lists the targets; V=1 shows the commands.

OUTPUT := .output
BUILD := build
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -dumpmachine)

WARN := -Wall -Wextra -Werror
CFLAGS ?= -g -O2
CFLAGS += $(WARN) -std=gnu11 -Iinclude -Iuser -I$(OUTPUT) -D_GNU_SOURCE
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(WARN) \
	-Iinclude -Ibpf -I/usr/include/$(MULTIARCH)
LDLIBS := -lbpf -lelf -lz -lcjson -lyaml -lmicrohttpd -lmnl -lcurl -lpthread -lm

# Every user/*.c is part of the agent; main.c holds main().
USER_SRCS := $(wildcard user/*.c)
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))
LIB_OBJS := $(filter-out $(OUTPUT)/user/main.o,$(USER_OBJS))
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(wildcard tools/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
BPF_TESTS := $(patsubst tests/bpf/%.c,$(BUILD)/tests/%,$(wildcard tests/bpf/test_*.c))

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all deps test test-unit test-bpf test-e2e vmtest demo bench bench-datapath bench-lb bench-rollback clean help

all: $(BUILD)/sluice $(TOOLS) ## build the agent/CLI and the test tools

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

# Debian packages the build and the tests need; installs only what is missing.
DEB_PKGS := clang libbpf-dev bpftool libelf-dev zlib1g-dev libcjson-dev \
	libyaml-dev libcmocka-dev pkg-config make gcc iproute2 util-linux curl jq procps \
	nginx-light libmicrohttpd-dev prometheus libmnl-dev libcurl4-openssl-dev libclang-rt-dev \
	python3-yaml wrk haproxy nftables iptables qemu-system-x86 busybox-static kmod ethtool
deps: ## install missing build/test packages with apt-get
	@missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "all build packages present"; fi

$(OUTPUT) $(OUTPUT)/user $(BUILD) $(BUILD)/tests:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/lib/*.h) $(wildcard include/sluice/*.h) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OUTPUT)/user/%.o: user/%.c $(wildcard user/*.h) $(wildcard include/sluice/*.h) $(SKELS) | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/sluice: $(USER_OBJS) | $(BUILD)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/%: tools/%.c | $(BUILD)
	$(call msg,TOOL,$@)
	$(Q)$(CC) $(CFLAGS) $< -lm -lpthread -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lcmocka -o $@

$(BUILD)/tests/%: tests/bpf/%.c tests/bpf/pkt.h tests/bpf/fixture.h tests/lib/tap.h $(LIB_OBJS) $(SKELS) | $(BUILD)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/bpf -Itests/lib $(filter %.c %.o,$^) $(LDLIBS) -o $@

# The README's test command. Each suite prints TAP; tests/run.sh sums them
# into the final "N passed, N failed, N skipped" line.
# vmtest/run.sh last: the same BPF fixtures and e2e checks on Debian 12's
# 6.1 kernel in QEMU (2 to 3.5 min under TCG).
test: all $(UNIT_TESTS) $(BPF_TESTS) fuzz-build ## run unit, BPF fixture, end-to-end tests and vmtest
	$(Q)KERNEL=$(KERNEL) tests/run.sh $(UNIT_TESTS) tests/fuzz/test_corpus.sh $(BPF_TESTS) \
		tests/e2e/test_*.sh vmtest/run.sh

test-unit: $(UNIT_TESTS) ## unit tests only (no privileges)
	$(Q)tests/run.sh $(UNIT_TESTS)

test-bpf: all $(BPF_TESTS) ## BPF fixture tests only (root)
	$(Q)tests/run.sh $(BPF_TESTS)

test-e2e: all ## end-to-end network namespace tests only (root)
	$(Q)tests/run.sh tests/e2e/test_*.sh

demo: all ## a namespace cluster with a live rollout (root)
	$(Q)tools/demo.sh

# The BPF fixtures and short end-to-end checks in a QEMU VM booting another
# kernel (default Debian 12's 6.1 LTS; KERNEL=package name or .deb path).
# vmtest/README.md.
KERNEL ?= linux-image-amd64
vmtest: all $(BPF_TESTS) ## BPF fixtures and e2e in a QEMU VM on KERNEL (default Debian 12's 6.1) (root)
	$(Q)KERNEL=$(KERNEL) tests/run.sh vmtest/run.sh

# The issue's whole benchmark: the datapath's ns/packet figures, then sluice
# against the alternatives under wrk and the agent's own cost (about 30 min).
bench: bench-datapath bench-lb ## bench-datapath, then bench-lb (root)

bench-datapath: all $(BUILD)/tests/bench_datapath ## datapath ns/packet figures alone (root)
	$(Q)$(BUILD)/tests/bench_datapath

bench-lb: all ## sluice vs direct, iptables, nftables, HAProxy with wrk; agent CPU/RSS (root)
	$(Q)tools/bench-lb.sh

bench-rollback: all ## time and failed requests from a failing canary to weight 0 (root)
	$(Q)tools/bench-rollback.sh

$(BUILD)/tests/bench_datapath: tests/bpf/bench_datapath.c tests/bpf/pkt.h $(LIB_OBJS) $(SKELS) | $(BUILD)/tests
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/bpf -Itests/lib $(filter %.c %.o,$^) $(LDLIBS) -o $@

clean: ## remove build outputs
	$(call msg,CLEAN,)
	$(Q)rm -rf $(OUTPUT) $(BUILD)

# libFuzzer targets (clang, ASan/UBSan) for what parses untrusted input: the
# spec parser and the control-socket request parser. `make fuzz` fuzzes each
# for FUZZ_SECONDS; the test suite replays the seed corpus (tests/fuzz/corpus).
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Iinclude -Iuser -D_GNU_SOURCE
FUZZ_TARGETS := $(BUILD)/fuzz/fuzz_spec $(BUILD)/fuzz/fuzz_api

$(BUILD)/fuzz:
	$(Q)mkdir -p $@

$(BUILD)/fuzz/fuzz_spec: tests/fuzz/fuzz_spec.c user/spec.c user/yaml_json.c | $(BUILD)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $^ -lcjson -lyaml -lm -o $@

$(BUILD)/fuzz/fuzz_api: tests/fuzz/fuzz_api.c user/api.c user/log.c | $(BUILD)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $^ -lcjson -lbpf -o $@

.PHONY: fuzz fuzz-build
# Built for the test suite's corpus replay; skipped (the suite says so) when
# clang has no libFuzzer runtime.
fuzz-build:
	$(Q)$(MAKE) --no-print-directory $(FUZZ_TARGETS) 2>/dev/null || \
		echo "  fuzz targets not built: clang's libFuzzer runtime is missing"

fuzz: $(FUZZ_TARGETS) ## fuzz the spec and request parsers, FUZZ_SECONDS each
	$(Q)for t in spec api; do \
		mkdir -p $(BUILD)/fuzz/corpus-$$t && cp -n tests/fuzz/corpus/$$t/* $(BUILD)/fuzz/corpus-$$t/; \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
			$(BUILD)/fuzz/corpus-$$t || exit 1; \
	done
