# The third-party libraries CLIP++'s libraries link, as imported targets. Included by the build
# (CMakeLists.txt) and, installed beside ClipPPConfig.cmake, by a project that does
# find_package(ClipPP): the static libraries' link interface names these targets, so a consumer
# finds the same ones. Reads the CLIP_BUILD_* switches to know which parts are there.
include_guard(GLOBAL)

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc i18n)
find_package(ZLIB REQUIRED)
find_package(CURL REQUIRED)     # model downloads (src/hub)
find_package(OpenSSL REQUIRED)  # SHA-256 of downloaded blobs (src/hub) and of indexed files (src/index)

if(CLIP_BUILD_IMAGE)
  pkg_check_modules(CLIP_CODECS REQUIRED IMPORTED_TARGET libjpeg libpng libwebp libwebpdemux libturbojpeg)
  find_package(GIF REQUIRED)
endif()
if(CLIP_BUILD_DATA)
  # WebDataset tar shards.
  pkg_check_modules(CLIP_ARCHIVE REQUIRED IMPORTED_TARGET libarchive)
endif()

if(CLIP_BUILD_MODEL)
  find_package(Torch REQUIRED)
  # TORCH_LIBRARIES mixes target names and a path (libc10): one target, so that the exported
  # link interface carries no path of the building machine.
  if(NOT TARGET ClipPP::torch)
    add_library(ClipPP::torch INTERFACE IMPORTED)
    set_target_properties(ClipPP::torch PROPERTIES INTERFACE_LINK_LIBRARIES "${TORCH_LIBRARIES}")
  endif()
  # oneDNN, for the pre-packed linears (src/model/fast_linear.cpp).
  find_library(CLIP_DNNL_LIBRARY dnnl REQUIRED)
  if(NOT TARGET ClipPP::dnnl)
    add_library(ClipPP::dnnl UNKNOWN IMPORTED)
    set_target_properties(ClipPP::dnnl PROPERTIES IMPORTED_LOCATION "${CLIP_DNNL_LIBRARY}")
  endif()
endif()

if(CLIP_BUILD_INDEX)
  # Debian ships FAISS as a static library only, so its OpenMP, BLAS and LAPACK are linked here
  # (the OpenMP runtime only: -fopenmp on our sources would not match the torch PCH).
  find_library(CLIP_FAISS_LIBRARY faiss REQUIRED)
  find_package(OpenMP REQUIRED)
  find_package(LAPACK REQUIRED)
  if(NOT TARGET ClipPP::faiss)
    add_library(ClipPP::faiss UNKNOWN IMPORTED)
    set_target_properties(ClipPP::faiss PROPERTIES
      IMPORTED_LOCATION "${CLIP_FAISS_LIBRARY}"
      INTERFACE_LINK_LIBRARIES "${OpenMP_CXX_LIBRARIES};${LAPACK_LIBRARIES}")
  endif()
endif()
