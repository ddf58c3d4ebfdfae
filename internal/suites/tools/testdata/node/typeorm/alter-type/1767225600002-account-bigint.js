module.exports = class AccountBigint1767225600002 {
  name = 'AccountBigint1767225600002';

  async up(queryRunner) {
    await queryRunner.query(`ALTER TABLE "big" ALTER COLUMN "account" TYPE bigint`);
  }

  async down(queryRunner) {
    await queryRunner.query(`ALTER TABLE "big" ALTER COLUMN "account" TYPE integer`);
  }
};
