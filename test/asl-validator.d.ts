// asl-validator ships no type declarations; this is the part of its API the tests use.
declare module "asl-validator" {
  interface AslValidationResult {
    isValid: boolean;
    errors: unknown[];
  }
  export default function aslValidator(definition: unknown): AslValidationResult;
}
