// SPDX-License-Identifier: Apache-2.0
// Keeps ortserve_testing a valid library while it has no fakes of its own.
