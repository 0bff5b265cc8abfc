# libtensor: one entry point. See README.md.
#   make            libtensor.a, libtensor.so and every tool
#   make check      Check suites (the README's test command)
#   make sanitize   the same suites under ASan + UBSan
#   make bench      benchmarks (tools/bench), never part of the tests
#   make bench-compare  ours and PyTorch's reference side by side
#   make demo       the main job on the bundled data
#   make install PREFIX=/usr/local
#   make deps       apt-get the Debian packages that are missing
#   PORTABLE=1      generic x86-64 instead of -march=native

VERSION   := 0.1.0
SOVERSION := 0
PREFIX    ?= /usr/local
CC        ?= cc
BUILD     ?= build

DEB_PKGS := libopenblas-dev libpng-dev libstb-dev check zlib1g-dev pkg-config libcjson-dev \
            valgrind clang-14 libclang-rt-14-dev \
            dataset-fashion-mnist

ifeq ($(PORTABLE),1)
  ARCH := -march=x86-64 -mtune=generic
else
  ARCH := -march=native
endif
OPT      ?= -O3 $(ARCH)
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fopenmp -fPIC -g \
             -I. -I$(BUILD)/include -I/usr/include/stb $(EXTRA_CFLAGS)
LDLIBS_ALL = -fopenmp -lopenblas -lpng -lz -lcjson -lm -lpthread $(EXTRA_LDFLAGS)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

MODULES  := tensor autograd nn data rrr
LIB_SRC  := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
# Public headers: every module header except the private ones (*_internal.h, iter.h).
HEADERS  := $(filter-out %_internal.h tensor/iter.h,$(foreach m,$(MODULES),$(wildcard $(m)/*.h)))

TOOL_SRC := $(wildcard tools/*.c)
TOOLS    := $(TOOL_SRC:%.c=%)
BENCH_SRC:= $(wildcard tools/bench/*.c)
BENCHES  := $(BENCH_SRC:%.c=%)
TEST_SRC := $(wildcard tests/test_*.c)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_COMMON := $(wildcard tests/common/*.c)

STATIC   := $(BUILD)/libtensor.a
SHARED   := $(BUILD)/libtensor.so.$(VERSION)

.PHONY: all lib tools check sanitize bench demo install uninstall clean deps \
        deps-ok test-bin examples-test memcheck bench-compare

all: lib tools

lib: $(STATIC) $(SHARED)

INC_STAMP := $(BUILD)/include/libtensor/.stamp
$(INC_STAMP): $(HEADERS)
	@mkdir -p $(dir $@)
	@for h in $(HEADERS); do ln -sf $(CURDIR)/$$h $(BUILD)/include/libtensor/; done
	@touch $@

$(BUILD)/%.o: %.c $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libtensor.so.$(SOVERSION) -o $@ $^ $(LDLIBS_ALL)
	ln -sf libtensor.so.$(VERSION) $(BUILD)/libtensor.so.$(SOVERSION)
	ln -sf libtensor.so.$(VERSION) $(BUILD)/libtensor.so

tools: $(TOOLS) $(BENCHES)

# Tools and benchmarks also depend on the headers they share (svg.h, ...).
tools/%: tools/%.c $(STATIC) $(wildcard tools/*.h tools/bench/*.h)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(STATIC) $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/%.c $(TEST_COMMON) $(STATIC) $(wildcard tests/common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-error=unused-function $< $(TEST_COMMON) -o $@ $(STATIC) \
	    $(CHECK_LIBS) $(LDLIBS_ALL)

test-bin: $(TESTS)

# Installs Debian packages that are missing (and only those).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "deps: all present"; fi

deps-ok:
	@for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || { $(MAKE) --no-print-directory deps; break; }; \
	done

check: deps-ok
	@$(MAKE) --no-print-directory test-bin tools
	@bash tests/run_suites.sh $(BUILD)/tests $(TESTS)
	@$(MAKE) --no-print-directory examples-test

# The docs/examples programs, built against the *installed* library.
examples-test: lib
	@bash tests/examples_test.sh

sanitize: deps-ok
	@$(MAKE) --no-print-directory BUILD=build-san \
	  OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" test-bin
	@LT_SANITIZE=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  bash tests/run_suites.sh build-san/tests $(TESTS:$(BUILD)/%=build-san/%)

# A fast subset of the suites under valgrind memcheck (zero errors, zero leaks).
memcheck: deps-ok test-bin
	@bash tests/memcheck.sh $(BUILD)/tests

bench: all
	@bash tools/bench/run.sh

# Ours and PyTorch's torch_bench.py side by side (when python3-torch exists).
bench-compare: all
	@bash tools/bench/compare.sh

demo: deps-ok all
	@bash tools/demo.sh

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/libtensor $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libtensor.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtensor.so.$(SOVERSION)
	ln -sf libtensor.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtensor.so
	for h in $(HEADERS); do install -m 644 $$h $(DESTDIR)$(PREFIX)/include/libtensor/; done
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: libtensor' 'Description: tensors, double-backprop autograd and nn in C' \
	  'Version: $(VERSION)' 'Requires.private: libpng zlib' \
	  'Libs: -L$${libdir} -ltensor' 'Libs.private: -fopenmp -lopenblas -lcjson -lm -lpthread' \
	  'Cflags: -I$${includedir}' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libtensor.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/libtensor
	rm -f $(DESTDIR)$(PREFIX)/lib/libtensor.* $(DESTDIR)$(PREFIX)/lib/pkgconfig/libtensor.pc

clean:
	rm -rf build build-san $(TOOLS) $(BENCHES)

-include $(LIB_OBJ:.o=.d)
# Fuzz targets (make fuzz) live with their corpora in tests/fuzz/.
-include tests/fuzz/fuzz.mk
