# SPDX-License-Identifier: Apache-2.0
# The module dependency rule, enforced by the compiler (DESIGN.md: frontend ->
# admission -> router -> scheduler -> backend -> core).
#
# There is no project-wide include path. ortserve_module_headers(<target> <dir>...)
# gives <target> an include root of its own holding the headers of each <dir>
# (a folder under src/, such as `core` or `frontend/kserve`; not its
# sub-folders, which are modules of their own) as symbolic links to the
# sources. The root is a PUBLIC include directory of <target>, so it reaches
# exactly the targets that link <target>, by CMake's usual rules:
#   - a target sees its own headers and those of every module it links;
#   - a PUBLIC link is passed on to whoever links the target (its headers
#     include the dependency's), a PRIVATE one is not.
# `#include "frontend/inference_service.h"` in a module that does not link
# ortserve_frontend fails with "No such file or directory"; tests/module_rules
# checks that it does. A new header is picked up at the next build (the glob
# re-runs CMake).
function(ortserve_module_headers target)
  set(root ${CMAKE_BINARY_DIR}/include_roots/${target})
  file(REMOVE_RECURSE ${root})
  foreach(dir ${ARGN})
    file(MAKE_DIRECTORY ${root}/${dir})
    file(GLOB headers CONFIGURE_DEPENDS RELATIVE ${CMAKE_SOURCE_DIR}/src/${dir} ${CMAKE_SOURCE_DIR}/src/${dir}/*.h)
    foreach(header ${headers})
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${dir}/${header} ${root}/${dir}/${header} SYMBOLIC)
    endforeach()
  endforeach()
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${root}>)
endfunction()
