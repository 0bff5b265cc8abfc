# tests/fuzz/fuzz.mk: libFuzzer targets (included by the top Makefile).
#
#   make fuzz-build   build every target into tests/fuzz/build/
#   make fuzz         run each target FUZZ_SECONDS (20) on its corpus; fails on
#                     any crash, leak, sanitizer report or failed check
#   make fuzz-long    the same for FUZZ_RUNS (1000000) executions per target
#   make fuzz-clean   remove tests/fuzz/build/
#
# Targets are built with Debian's clang (FUZZ_CC, clang-14 when installed)
# with -fsanitize=fuzzer,address,undefined; the library sources they need are
# compiled again here with the same sanitizers (and -fsanitize=fuzzer-no-link
# for coverage) into an archive, so only the objects a target uses are
# linked. Warnings in library sources are the main build's business (gcc,
# -Werror); here they are silenced so a clang-only warning cannot break the
# fuzz build. See tests/fuzz/README.md.

FUZZ_DIR     := tests/fuzz
FUZZ_BUILD   := $(FUZZ_DIR)/build
FUZZ_CC      ?= $(shell command -v clang-14 2>/dev/null || echo clang)
FUZZ_SECONDS ?= 20
FUZZ_RUNS    ?= 1000000

FUZZ_TARGETS ?= npy idx image in9 rival10 safetensors

FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -fopenmp \
                -I. -I$(BUILD)/include -I/usr/include/stb $(FUZZ_SAN)
FUZZ_LDLIBS  := -fopenmp -lopenblas -lpng -lz -lcjson -lm -lpthread

FUZZ_LIB     := $(FUZZ_BUILD)/libtensor-fuzz.a
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-long fuzz-clean

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@bash $(FUZZ_DIR)/run.sh seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-long: fuzz-build
	@bash $(FUZZ_DIR)/run.sh runs $(FUZZ_RUNS) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

# Debian's stb_image 2.27 shifts a negative int in its JPEG Huffman decoder
# on corrupt scan data (stbi__extend_receive and friends), and on a PNG with
# an empty IDAT chunk adds 0 to its still-NULL data pointer and memcpys 0
# bytes to it (stbi__parse_png_file, stbi__getn; crashes/image-K5-*). These
# are UB in C but harmless on every target we build for (no byte is read or
# written), so only this file is built without the shift, pointer-overflow
# and nonnull-attribute checks.
$(FUZZ_BUILD)/obj/data/stb_impl.o: FUZZ_OBJ_EXTRA := -fno-sanitize=shift,pointer-overflow,nonnull-attribute

$(FUZZ_BUILD)/obj/%.o: %.c $(INC_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_OBJ_EXTRA) -w -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_DIR)/fuzz_%.c $(wildcard $(FUZZ_DIR)/*.h) $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Wall -Wextra -Werror -Wno-unused-parameter \
	    $< -o $@ $(FUZZ_LIB) $(FUZZ_LDLIBS)

-include $(FUZZ_LIB_OBJ:.o=.d)
