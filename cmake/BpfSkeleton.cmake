# bpf_skeleton(NAME SOURCE src.bpf.c [DEPENDS header...])
#
# Builds one BPF object the libbpf-bootstrap way and exposes its skeleton header:
#   clang -O2 -g -target bpf -D__TARGET_ARCH_x86  ->  NAME.tmp.bpf.o
#   bpftool gen object NAME.bpf.o NAME.tmp.bpf.o   (strips DWARF, keeps BTF; links one object)
#   bpftool gen skeleton NAME.bpf.o name NAME      ->  NAME.skel.h
# and an INTERFACE library `NAME_skel` whose include path holds NAME.skel.h.
#
# Only bpf/include/vmlinux.h (committed, x86_64) is read for kernel types: the build never
# touches /sys/kernel/btf, so it works in a NixOS build sandbox too.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool REQUIRED
             PATHS /usr/sbin /sbin)

function(bpf_skeleton name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPENDS" ${ARGN})
  if(NOT ARG_SOURCE)
    message(FATAL_ERROR "bpf_skeleton(${name}): SOURCE is required")
  endif()
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_SOURCE})
  set(out ${CMAKE_CURRENT_BINARY_DIR})
  set(tmp_obj ${out}/${name}.tmp.bpf.o)
  set(obj ${out}/${name}.bpf.o)
  set(skel ${out}/${name}.skel.h)
  list(TRANSFORM ARG_DEPENDS PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/)
  add_custom_command(
    OUTPUT ${skel} ${obj}
    COMMAND ${BPF_CLANG} -O2 -g -target bpf -D__TARGET_ARCH_x86
            -Wall -Werror -Wno-unused-function
            -I${BPF_INCLUDE_DIR} -I${CMAKE_CURRENT_SOURCE_DIR}
            -c ${src} -o ${tmp_obj}
    COMMAND ${BPFTOOL} gen object ${obj} ${tmp_obj}
    # bpftool writes the skeleton to stdout; sh does the redirection portably.
    COMMAND sh -c "\"$0\" gen skeleton \"$1\" name \"$2\" > \"$3\"" ${BPFTOOL} ${obj} ${name} ${skel}
    DEPENDS ${src} ${ARG_DEPENDS} ${BPF_INCLUDE_DIR}/vmlinux.h
    COMMENT "BPF ${name}: ${ARG_SOURCE} -> ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  # Generated code is not ours to warn about: SYSTEM. ABI headers are included as
  # "bpf/x.h" from the project root, so they never collide with agent headers.
  target_include_directories(${name}_skel SYSTEM INTERFACE ${out})
  target_include_directories(${name}_skel INTERFACE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
