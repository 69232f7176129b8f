# The installed library, used the way another project would: `cmake --install` the library into a
# fresh prefix, configure and build tests/install/consumer against it (find_package(ClipPP) with
# only that prefix to search), and run it on the tiny model and its reference outputs.
#
# cmake -DBUILD_DIR=... -DWORK_DIR=... -DGENERATOR=... -DCXX_COMPILER=... [-DCXX_LAUNCHER=...]
#       -DFIXTURES=... -DLIBDIR=lib -P install_test.cmake  (LIBDIR: the build's CMAKE_INSTALL_LIBDIR)
foreach(var BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER FIXTURES LIBDIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
# The library alone (not the `clip` command, which tests/cli covers).
run_step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --component library)
foreach(installed include/clip/clip.h ${LIBDIR}/cmake/ClipPP/ClipPPConfig.cmake ${LIBDIR}/cmake/ClipPP/ClipPPConfigVersion.cmake
                  share/clip/bpe_simple_vocab_16e6.txt.gz)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "the install lacks ${installed}")
  endif()
endforeach()
# Internal headers stay in the source tree.
file(GLOB_RECURSE internal RELATIVE ${prefix}/include ${prefix}/include/*)
list(FILTER internal EXCLUDE REGEX "^clip/[a-z_]+\\.h$")
if(internal)
  message(FATAL_ERROR "the install holds headers that are not public ones: ${internal}")
endif()

set(launcher)
if(CXX_LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_LAUNCHER})
endif()
run_step("configuring the consumer" ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/consumer -B ${WORK_DIR}/build
         -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX_COMPILER} ${launcher}
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(NOT step_output MATCHES "ClipPP found in ${prefix}/${LIBDIR}/cmake/ClipPP")
  message(FATAL_ERROR "the consumer did not find ClipPP in ${prefix}:\n${step_output}")
endif()
run_step("building the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
# The installed assets (the BPE vocabulary), not the source tree's.
run_step("running the consumer" ${CMAKE_COMMAND} -E env CLIP_DATA_DIR=${prefix}/share/clip
         ${WORK_DIR}/build/consumer ${FIXTURES}/models/tiny-vit-f16.safetensors
         ${FIXTURES}/models/tiny-vit-f16.config.json ${FIXTURES}/ref/tiny-vit-f16)
message(STATUS "consumer:\n${step_output}")
