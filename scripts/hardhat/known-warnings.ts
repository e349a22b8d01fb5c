// A Hardhat hook that drops one compiler warning known to be harmless, so that the first screen of
// `npm run demo` (and of every build) is the project's own output, not solc's:
//   Warning 2394 "Transient storage as defined by EIP-1153 can break the composability …", raised by
//   OpenZeppelin's TransientSlot / ReentrancyGuardTransient, which PlanCore uses as its reentrancy guard.
// solc itself says "the use of transient storage for reentrancy guards that are cleared at the end of the
// call is safe", which is exactly this use (docs/SECURITY.md). Only that code, and only in files under
// @openzeppelin/contracts/, is dropped: the same warning raised by our own code would still print.
// A compilation job left with no warning at all returns none (undefined), so that Hardhat does not print
// the blank line it writes before each job's warnings (a dozen of them on a fresh build).
// `npm run demo` also builds first with stdout sent to /dev/null (compiler warnings and errors go to
// stderr and still show), then runs the demo with --no-compile: `hardhat run` prints a blank line after
// its own build.
import type { HookHandlerCategoryFactory } from "hardhat/types/plugins";

type CompilerError = { errorCode?: string; formattedMessage?: string; message: string; severity: string; sourceLocation?: { file: string } };

const known = (e: CompilerError): boolean =>
  e.severity === "warning" &&
  e.errorCode === "2394" &&
  /@openzeppelin\/contracts(@[\d.]+)?\/utils\/(TransientSlot|ReentrancyGuardTransient)\.sol/.test(`${e.sourceLocation?.file ?? ""} ${e.formattedMessage ?? ""}`);

const factory: HookHandlerCategoryFactory<"solidity"> = async () => ({
  async getCompilationJobErrors(context, job, output, next) {
    const errors = (await next(context, job, output)).filter((e) => !known(e as CompilerError));
    return (errors.length === 0 ? undefined : errors) as typeof errors;
  },
});

export default factory;
