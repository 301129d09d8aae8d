# find_package(gemini CONFIG): Gemini's C++ client as the imported target
# gemini::client (include/gemini/client.h, the static library libgemini_client.a).
# Installed by `pip install .` under the Python package; point CMake at it with
#   -DCMAKE_PREFIX_PATH="$(python -c 'import gemini; print(gemini.cmake_prefix_path)')"
# The library needs ISA-L (libisal: Debian's libisal-dev, or libisal2 alone),
# pthreads and librt, found here.
include(CMakeFindDependencyMacro)
find_dependency(Threads)

# This file lies in <prefix>/lib/cmake/gemini.
get_filename_component(_gemini_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
find_library(GEMINI_ISAL_LIBRARY NAMES isal libisal.so.2 DOC "ISA-L, which Gemini's client needs")
if(NOT GEMINI_ISAL_LIBRARY)
  set(gemini_FOUND FALSE)
  set(gemini_NOT_FOUND_MESSAGE
      "gemini::client needs ISA-L (libisal); install it (Debian: apt-get install libisal-dev) or set GEMINI_ISAL_LIBRARY")
  unset(_gemini_prefix)
  return()
endif()

if(NOT TARGET gemini::client)
  add_library(gemini::client STATIC IMPORTED)
  set_target_properties(gemini::client PROPERTIES
    IMPORTED_LOCATION "${_gemini_prefix}/lib/libgemini_client.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES CXX
    INTERFACE_INCLUDE_DIRECTORIES "${_gemini_prefix}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_17
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${GEMINI_ISAL_LIBRARY};rt")
endif()
set(gemini_INCLUDE_DIRS "${_gemini_prefix}/include")
unset(_gemini_prefix)
