# The Python package as installed (docs/python.md, "Installed"): `cmake --install` into a fresh
# prefix, then import clip_cpp from that prefix alone (PYTHONPATH = the prefix's package folder, run
# from an empty folder so neither the source nor the build tree is on sys.path), and embed a text
# and an image with the tiny model, the vocabulary read from the prefix's share/clip.
#
# cmake -DBUILD_DIR=... -DPREFIX=... -DPYTHON=... -DPACKAGE_DIR=lib/python3.X/dist-packages
#       -DMODEL=.../tiny-vit-f16.safetensors -P install_test.cmake
foreach(var BUILD_DIR PREFIX PYTHON PACKAGE_DIR MODEL)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${PREFIX})
foreach(component library python)
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX} --component ${component}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake --install --component ${component} failed (${rc}):\n${out}")
  endif()
endforeach()

set(package ${PREFIX}/${PACKAGE_DIR}/clip_cpp)
file(GLOB extension ${package}/_core*.so)
if(NOT EXISTS ${package}/__init__.py OR NOT extension)
  message(FATAL_ERROR "the install lacks the package: ${package}/__init__.py and _core*.so expected")
endif()

set(script [=[
import sys, clip_cpp
prefix, model_path = sys.argv[1], sys.argv[2]
assert clip_cpp.__file__.startswith(prefix), "clip_cpp imported from " + clip_cpp.__file__
model, _, preprocess = clip_cpp.create_model_and_transforms(model_path)
tokens = clip_cpp.tokenize(["a photo of a cat"])
assert tokens[0, :2].tolist() == [49406, 320], tokens[0, :4]
text = model.encode_text(tokens, normalize=True)
from PIL import Image
pixels = preprocess(Image.new("RGB", (40, 30), (200, 30, 10))).unsqueeze(0)
image = model.encode_image(pixels, normalize=True)
print("installed clip_cpp:", clip_cpp.__file__, tuple(text.shape), tuple(image.shape))
]=])
file(MAKE_DIRECTORY ${PREFIX}/run)
execute_process(COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${PREFIX}/${PACKAGE_DIR} CLIP_DATA_DIR=${PREFIX}/share/clip
                        ${PYTHON} -c "${script}" ${PREFIX} ${MODEL}
                WORKING_DIRECTORY ${PREFIX}/run RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "importing the installed clip_cpp failed (${rc}):\n${out}")
endif()
message(STATUS "${out}")
