module.exports = class AddRef1767225600002 {
  name = 'AddRef1767225600002';

  async up(queryRunner) {
    await queryRunner.query(`ALTER TABLE "big" ADD "ref" uuid DEFAULT gen_random_uuid()`);
  }

  async down(queryRunner) {
    await queryRunner.query(`ALTER TABLE "big" DROP COLUMN "ref"`);
  }
};
